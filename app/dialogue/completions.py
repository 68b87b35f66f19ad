"""Stateless chat completions: a conversation the caller holds (an OpenAI-style `messages` list) read into the
question to answer (its last customer message) and the history before it. Nothing is stored: no conversation, no
message, no slot; the caller sends the whole conversation again next time. What an OpenAI-compatible route
(`POST /v1/chat/completions`) needs.

The turn itself is the dialogue manager's stateless one (`app.dialogue.manager.DialogueManager.respond`): the injection
check over every customer message, the intent (a greeting, thanks or small talk get their short reply; asking for
a person gets the way to reach one, since a stateless chat has no queue an agent could pick up), the answer cache
for a conversation of one message, then the stateless answerer with the caller's earlier messages as history
and the slots they fill. `app.services.KefuService.complete_stream` adds the rate limit and the audit record,
the gate (`app.access.gate`) the role check.

The caller's `system` messages are ignored: Kefu's own grounded prompt (`app.answering.prompting`) is the only system
prompt, so a client cannot talk the model out of its rules. `assistant` messages count as earlier answers.

What OpenAI's format wants back beside the text, also pure:
- **Usage** (`usage`): when a language model wrote the answer, its own count (the grounded prompt's tokens and
  the answer's). Otherwise (an FAQ entry, quoted sentences, a short reply) no model counted anything, and Kefu
  estimates (`estimate_tokens`): one token per Chinese character, and one per 4 of the other characters, spaces
  included (OpenAI's rule of thumb for English), rounded up; the prompt is the caller's messages, 4 tokens of
  framing each and 3 for the reply's start, as OpenAI counts chat messages. On the sample policies it is 7% above
  SmolLM2's BPE and 1% above multilingual-e5's SentencePiece count for English, 15% above the latter for
  Chinese: a figure for budgets and dashboards, not for billing.
- **A sources footer** (`sources_footer`, KEFU_OPENAI_SOURCES_FOOTER): the sources behind the `[n]` citations
  as short lines of text, for clients that show only the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.answering.answerer import Reply, Usage
from app.answering.rewriting import HistoryItem
from app.errors import InputError
from ingest.cjk import CJK_CLASS

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_MESSAGES = 1000
MESSAGE_TOKENS = 4  # framing of one chat message (role, start and end markers), as OpenAI counts it
REPLY_TOKENS = 3  # the start of the assistant's reply
CHARS_PER_TOKEN = 4
_CJK = re.compile(f"[{CJK_CLASS}]")
FOOTER_TITLE = {"en": "Sources:", "zh": "来源："}


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


def estimate_tokens(text: str) -> int:
    """About how many tokens `text` is (see the module's docstring): one per Chinese character, one per 4 of the
    other characters (spaces included), rounded up."""
    text = text or ""
    chinese = len(_CJK.findall(text))
    return chinese + -(-(len(text) - chinese) // CHARS_PER_TOKEN)


def usage(reply: Reply, messages: Sequence[ChatMessage]) -> Usage:
    """A finished reply's token counts: the model's own when a model wrote it, else Kefu's estimate of the
    caller's messages (the prompt) and the answer."""
    if reply.usage is not None:
        return reply.usage
    prompt = sum(estimate_tokens(m.content) + MESSAGE_TOKENS for m in messages) + REPLY_TOKENS
    return Usage(prompt, estimate_tokens(reply.answer.answer if reply.answer else ""))


def sources_footer(sources: Sequence[Mapping[str, Any]], language: str | None = None) -> str:
    """The sources as text to append to an answer: a blank line, "Sources:" (来源： for Chinese), and one line
    per source, numbered as the answer cites them: title › section, page, and the address of a web page (a
    file's path on the server is not shown). Empty when there are no sources."""
    if not sources:
        return ""
    lines = ["", "", FOOTER_TITLE.get(language or "en", FOOTER_TITLE["en"])]
    for number, source in enumerate(sources, start=1):
        title = str(source.get("title") or source.get("doc_id") or "")
        section = str(source.get("section") or "")
        label = f"{title} › {section}" if section and section != title else title
        if source.get("page"):
            label += f", p. {source['page']}"
        address = str(source.get("source") or "")
        if re.fullmatch(r"https?://\S+", address):
            label += f" ({address})"
        lines.append(f"[{number}] {' '.join(label.split())}")
    return "\n".join(lines)
