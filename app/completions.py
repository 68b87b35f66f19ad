"""Stateless chat completions: a conversation the caller holds (an OpenAI-style `messages` list) in, the answer
to its last customer message out. Nothing is stored: no conversation, no message, no slot; the caller sends the
whole conversation again next time. What an OpenAI-compatible route (`POST /v1/chat/completions`) needs.

The turn is the dialogue manager's (`app.dialogue`) without its memory: clean the message → the injection check
(a polite refusal) → the intent (a greeting, thanks, goodbye or small talk get their short reply; asking for a
person or complaining gets the way to reach one, since a stateless chat has no queue an agent could pick up) →
the stateless answerer (`app.answerer`) with the caller's earlier messages as history and the slots they
fill, which rewrites a follow-up, retrieves, decides, writes and checks the answer and applies the output
policy. Every answer passes `Answerer.for_customer` there, as in a conversation.

The caller's `system` messages are ignored: Kefu's own grounded prompt (`app.prompting`) is the only system
prompt, so a client cannot talk the model out of its rules. `assistant` messages count as earlier answers.

Pure but for the components it is given; `app.services.KefuService.complete_stream` adds the rate limit and the
audit record, `app.access` the role check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app import answering, intents
from app.answerer import Answerer, Reply
from app.answering import MODE_ABSTAIN, MODE_HANDOFF, MODE_SMALLTALK, Answer
from app.dialogue import ATTACK, say
from app.errors import InputError
from app.injection import detect_injection
from app.intents import Intent, IntentClassifier
from app.pii import find_pii
from app.rewriting import HistoryItem
from app.slots import find_slots
from rag.analysis import detect_language

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_MESSAGES = 1000

MESSAGES = {
    "no_handoff": {
        "en": "I can't connect you with a person from this chat. Please contact our support team through our "
        "website's help page; I can still answer questions about our products and services here.",
        "zh": "抱歉，在这里无法为您转接人工客服。请通过我们网站的帮助页面联系客服团队；"
        "您也可以继续在这里向我咨询产品和服务相关的问题。",
    },
}


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


def message_text(content: Any) -> str:
    """An OpenAI message's content as text: a string, or the text parts of a list of content parts (images and
    other parts are not read). InputError for anything else."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, str):
                texts.append(part)
        return "\n".join(texts)
    raise InputError("a message's content must be a string or a list of text parts")


def split_conversation(messages: Sequence[ChatMessage], keep: int) -> tuple[str, list[HistoryItem]]:
    """The last message (which must be the customer's) and the `keep` messages before it as history, oldest
    first; system, developer and tool messages left out. InputError when there is no user message last."""
    if not messages:
        raise InputError("`messages` is empty: send at least one message with role `user`")
    if len(messages) > MAX_MESSAGES:
        raise InputError(f"{len(messages)} messages in one request; the limit is {MAX_MESSAGES}")
    for m in messages:
        if m.role not in ROLES:
            raise InputError(f"unknown message role {m.role!r}: use one of {', '.join(ROLES)}")
    last = messages[-1]
    if last.role != "user":
        raise InputError(f"the last message has role {last.role!r}: end `messages` with the customer's (role `user`)")
    earlier = [HistoryItem(m.role, m.content) for m in messages[:-1]
               if m.role in ("user", "assistant") and m.content.strip()]  # fmt: skip
    return last.content, earlier[-keep:] if keep else []


class StatelessChat:
    """The answer to a conversation's last customer message, streamed; see the module docstring."""

    def __init__(
        self,
        answerer: Answerer,
        intent_classifier: IntentClassifier,
        products: Callable[[], Sequence[str]] = lambda: (),
        history_messages: int = 20,
    ):
        self.answerer = answerer
        self.intents = intent_classifier
        self.products = products
        self.history_messages = history_messages

    def reply(self, messages: Sequence[ChatMessage]) -> Reply:
        """Check the conversation now (InputError at once for a malformed one), then answer it lazily: iterate the
        Reply for the text as it is written, `.answer` afterwards (its `intent`, `personal_data` and `query`
        filled; `session_id` and `message_id` stay None: nothing was stored)."""
        started = time.perf_counter()
        question, history = split_conversation(messages, self.history_messages)
        text = self.answerer.check(question)

        def pieces(reply: Reply) -> Iterator[str]:
            language = detect_language(text) or "en"
            verdict = detect_injection(text)
            intent = Intent(ATTACK, verdict.score, "injection") if verdict.flagged else self.intents.classify(text)
            answer: Answer | None = None
            if intent.name == ATTACK:
                answer = Answer(say("attack", language), MODE_ABSTAIN, language=language)
            elif intent.name in intents.HANDOFF_INTENTS:
                answer = Answer(answering.message("no_handoff", language, MESSAGES), MODE_HANDOFF, language=language)
            elif intent.name in intents.SMALL_TALK:
                mode = MODE_ABSTAIN if intent.name == intents.CHITCHAT else MODE_SMALLTALK
                answer = Answer(say(intent.name, language), mode, language=language)
            if answer is not None:
                yield answer.answer
            else:
                slots = self.slots(history, text)
                # ANSWER CACHE: a request with no history and no slots (a single message) may be answered from
                # `app.answer_cache` here, keyed by the question and the answer filters, and its answer stored
                # after `written.finish()` below (modes faq / extractive / generated only, never with personal data).
                written = self.answerer.reply(text, history, slots)
                yield from written
                answer, reply.prompt = written.finish(), written.prompt
            answer.intent = intent.name
            answer.personal_data = sorted({span.type for span in find_pii(text)})
            answer.latency_ms = int((time.perf_counter() - started) * 1000)
            reply.answer = answer

        return Reply(pieces)

    def slots(self, history: Sequence[HistoryItem], text: str) -> dict[str, str]:
        """What the customer's messages told (an order number, a product...), a later value replacing an earlier."""
        products = self.products()
        found: dict[str, str] = {}
        for item in [*history, HistoryItem("user", text)]:
            if item.role == "user":
                found.update(find_slots(item.content, products))
        return found
