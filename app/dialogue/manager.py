"""The dialogue manager: one customer message in, one reply out, within a conversation kept in the sessions
database. It owns the turn rules; answering a question is the stateless `app.answering.answerer`'s work.

A turn: understand (intent, slots) → store the customer's message (before anything can fail) → route by the
conversation's handoff status (`app.dialogue.handoff`) and the intent → answer → store the reply.

- Handed over (`waiting_agent`): a holding reply with the queue position, never an answer the assistant made
  up. With an agent (`with_agent`): the assistant stays silent; the message waits for the agent. Resolved: a
  new message reopens the conversation with the assistant.
- Asking for a person, or a complaint: the conversation is handed over at once, and the customer is told.
- A greeting, thanks or goodbye: a short reply without a search. Small talk: what Kefu can help with.
- An injection or jailbreak attempt (`app.guardrails.injection`): a polite refusal; it counts as an abstention towards
  handoff and three times towards the client's rate limit.
- A question: the answerer, given the conversation's recent messages and slots. Its second abstention in a
  row hands the conversation over instead. Every abstention is recorded as a knowledge gap.

A turn with no stored conversation (`respond`: the OpenAI-compatible API, whose client sends the whole
conversation each time) follows the same rules where the conversation's state does not decide: injection
attempts anywhere in the given conversation are refused, small talk gets its short replies, a request for a
person is told where people answer, and questions go to the answerer with the given history. Nothing is
stored but knowledge gaps. Both kinds of turn take an answer to a question asked with no history and no slots
from the answer cache when it holds one (`app.answering.cache`), and keep it there otherwise; every answer is
counted by mode and by whether the cache gave it (`app.metrics.ANSWERS`).

Agents act through the same manager: take a conversation, reply (a message of role `agent`), release it back
to the assistant, resolve it. Feedback on an answer is stored, and "not helpful" is a knowledge gap too.
Role checks belong to the callers (the CLI is the operator's; the web and API front ends check roles).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from app import metrics

from app.answering import rules as answering

from app.dialogue import handoff

from app.dialogue import intents
from app.answering.answerer import Answerer, Reply
from app.answering.rules import MODE_ABSTAIN, MODE_HANDOFF, MODE_SMALLTALK, Answer
from app.errors import InputError
from app.dialogue.feedback import GAP_ABSTAINED, GAP_NOT_HELPFUL, FeedbackRecord, FeedbackStore
from app.guardrails.injection import detect_injection
from app.dialogue.intents import Intent, IntentClassifier
from app.guardrails.pii import find_pii
from app.answering.rewriting import HistoryItem
from app.dialogue.sessions import MessageRecord, NewMessage, SessionStore
from app.settings import DialogueSettings
from app.dialogue.slots import find_slots
from rag.analysis import detect_language

if TYPE_CHECKING:
    from app.answering.cache import AnswerCache

MAX_AGENT_MESSAGE_CHARS = 8000

MESSAGES = {
    "requested": {
        "en": "I'm connecting you with a human agent. Someone from our support team will reply here shortly.",
        "zh": "正在为您转接人工客服，客服人员会尽快在这里回复您。",
    },
    "complaint": {
        "en": "I'm sorry for the trouble. I'm connecting you with a member of our support team, who will reply "
        "here shortly.",
        "zh": "非常抱歉给您带来不便。正在为您转接人工客服，客服人员会尽快在这里回复您。",
    },
    "unanswered": {
        "en": "I still couldn't find an answer in our knowledge base, so I'm connecting you with a human agent. "
        "Someone from our support team will reply here shortly.",
        "zh": "抱歉，知识库中仍然没有找到答案，正在为您转接人工客服，客服人员会尽快在这里回复您。",
    },
    "waiting": {
        "en": "A human agent has been asked to join this conversation and will reply here shortly.",
        "zh": "已为您通知人工客服，请稍候，客服人员会尽快在这里回复您。",
    },
    "queue": {"en": " You are number {n} in the queue.", "zh": "您前面还有 {ahead} 位客户。"},
    "with_agent": {
        "en": "Your message has been passed to the agent handling this conversation.",
        "zh": "您的消息已转给正在为您服务的客服人员。",
    },
    "greeting": {"en": "Hello! How can I help you today?", "zh": "您好！请问有什么可以帮您？"},
    "thanks": {"en": "You're welcome! Is there anything else I can help with?", "zh": "不客气！还有什么可以帮您的吗？"},
    "goodbye": {"en": "Thank you for contacting us. Goodbye!", "zh": "感谢您的咨询，再见！"},
    "attack": {
        "en": "I'm sorry, I can't help with that. I can answer questions about our products and services, such as "
        "orders, delivery, returns, warranty, payment and your account.",
        "zh": "抱歉，这个请求我无法处理。我可以回答与我们的产品和服务相关的问题，例如订单、配送、退货、保修、支付和账户。",
    },
    "no_agent_here": {
        "en": "I can't connect you with a person here. Please use our support chat, where a member of our team can "
        "take over the conversation.",
        "zh": "这里无法为您转接人工客服。请通过我们的在线客服联系，客服人员可以接手对话。",
    },
    "chitchat": {
        "en": "I can only help with questions about our products and services, such as orders, delivery, returns, "
        "warranty, payment and your account. What would you like to know?",
        "zh": "我只能回答与我们的产品和服务相关的问题，例如订单、配送、退货、保修、支付和账户。请问有什么可以帮您？",
    },
}
SYSTEM_NOTES = {
    "take": "{agent} joined the conversation.",
    "release": "{agent} handed the conversation back to the assistant.",
    "resolve": "{agent} marked the conversation resolved.",
}


def say(key: str, language: str, **values: object) -> str:
    return answering.message(key, language, MESSAGES).format(**values)


ATTACK = "attack"  # the intent of a message the injection detector flagged


def abstention_streak(recent: Sequence[MessageRecord]) -> int:
    """How many of the latest answers to questions (or refused injection attempts) were abstentions, counting
    back from the newest."""
    streak = 0
    for message in reversed(recent):
        if message.role == "user":
            continue
        if message.role != "assistant" or message.intent not in (intents.QUESTION, ATTACK):
            break  # an agent's reply, a handoff note or small talk ends the run
        if message.mode != MODE_ABSTAIN:
            break
        streak += 1
    return streak


def history_items(recent: Sequence[MessageRecord]) -> list[HistoryItem]:
    """Recent messages as the answerer sees the conversation: the customer's (with the standalone query their
    answer searched), the answers and agents' replies; holding replies, small talk, system notes and refused
    injection attempts (the message and its refusal: never context for a prompt) left out."""
    searched = {m.reply_to: m.query for m in recent if m.role == "assistant" and m.reply_to is not None}
    items = []
    for m in recent:
        if m.intent == ATTACK:
            continue
        if m.role == "user":
            items.append(HistoryItem("user", m.content, searched.get(m.id)))
        elif m.role == "agent" or (m.role == "assistant" and m.mode not in (MODE_HANDOFF, MODE_SMALLTALK)):
            items.append(HistoryItem(m.role, m.content))
    return items


class DialogueManager:
    def __init__(
        self,
        answerer: Answerer,
        sessions: SessionStore,
        feedback: FeedbackStore,
        intent_classifier: IntentClassifier,
        products: Callable[[], Sequence[str]] = lambda: (),
        settings: DialogueSettings | None = None,
        cache: AnswerCache | None = None,
    ):
        self.answerer = answerer
        self.sessions = sessions
        self.feedback_store = feedback
        self.intents = intent_classifier
        self.products = products  # the product names slots may name (read when a message arrives)
        self.settings = settings or DialogueSettings()
        self.cache = cache

    def understand(self, text: str) -> tuple[str, Intent]:
        """(language, intent) of a customer's message: an injection attempt is the intent `attack`."""
        language = detect_language(text) or "en"
        verdict = detect_injection(text)
        return language, Intent(ATTACK, verdict.score, "injection") if verdict.flagged else self.intents.classify(text)

    def _cache_key(self, text: str, conversation: Sequence[object], slots) -> str | None:
        """The answer cache's key for a question that depends on no conversation (nothing said before it, no
        slots); None otherwise, or when the question holds personal data."""
        if self.cache is None or conversation or slots:
            return None
        return self.cache.key(text)

    # -- the customer's turn ------------------------------------------------------------------------------

    def ask(self, text: str, session_id: str | None = None) -> Answer:
        return self.turn(text, session_id).finish()

    def turn(self, text: str, session_id: str | None = None, owner: str | None = None,
             customer_id: str | None = None) -> Reply:  # fmt: skip
        """Answer one customer message in the conversation `session_id` (a new one when None, recorded as
        started by `owner` for `customer_id`), streamed."""
        started = time.perf_counter()
        text = self.answerer.check(text)
        conversation_id = self.sessions.open(session_id, owner, customer_id)

        def pieces(reply: Reply) -> Iterator[str]:
            language, intent = self.understand(text)
            recent = self.sessions.recent(conversation_id, self.settings.history_messages)
            question = self.sessions.add(conversation_id, NewMessage("user", text, intent=intent.name))
            found = find_slots(text, self.products())
            slots = self.sessions.merge_slots(conversation_id, found)
            status = self.sessions.get(conversation_id).status
            if status == handoff.RESOLVED:
                status = self.sessions.transition(conversation_id, "reopen").status

            store, streamed = True, False
            if status == handoff.WAITING:
                answer = Answer(self._holding(conversation_id, language), MODE_HANDOFF, language=language)
            elif status == handoff.WITH_AGENT:
                answer, store = Answer(say("with_agent", language), MODE_HANDOFF, language=language), False
            elif intent.name == ATTACK:  # a polite refusal; it counts towards handoff and the client's rate limit
                if abstention_streak(recent) + 1 >= self.settings.handoff_after_abstentions:
                    answer = self._hand_over(conversation_id, handoff.REASON_SUSPICIOUS, language)
                else:
                    answer = Answer(say("attack", language), MODE_ABSTAIN, language=language)
            elif intent.name in intents.HANDOFF_INTENTS:
                reason = handoff.REASON_COMPLAINT if intent.name == intents.COMPLAINT else handoff.REASON_REQUESTED
                answer = self._hand_over(conversation_id, reason, language)
            elif intent.name in intents.SMALL_TALK:
                mode = MODE_ABSTAIN if intent.name == intents.CHITCHAT else MODE_SMALLTALK
                answer = Answer(say(intent.name, language), mode, language=language)
            else:
                history = history_items(recent)
                key = self._cache_key(text, recent, slots)  # any earlier message, even a note, is a conversation
                cached = self.cache.get(key) if key else None
                if cached is not None:
                    answer, cached.query = cached, text
                else:
                    decision = self.answerer.decide(text, history, slots)
                    if decision.abstained:
                        self.feedback_store.add_gap(decision.rewrite.query, language, GAP_ABSTAINED, conversation_id, question.id)
                    if decision.abstained and abstention_streak(recent) + 1 >= self.settings.handoff_after_abstentions:
                        answer = self._hand_over(conversation_id, handoff.REASON_UNANSWERED, language)
                        answer.query = decision.rewrite.query
                    else:
                        written = self.answerer.write(decision, history)
                        yield from written
                        reply.prompt, answer, streamed = written.prompt, written.finish(), True
                        if key:
                            self.cache.put(key, answer, conversation_id)
            if not streamed:
                yield answer.answer
            answer.session_id = conversation_id
            answer.intent = intent.name
            answer.personal_data = sorted({span.type for span in find_pii(text)})
            answer.question_id = question.id
            answer.latency_ms = int((time.perf_counter() - started) * 1000)
            if store:
                stored = self.sessions.add(
                    conversation_id,
                    NewMessage(
                        "assistant", answer.answer, answer.mode, answer.sources, answer.latency_ms, intent=intent.name,
                        query=answer.query, reply_to=question.id, confidence=answer.confidence,
                    ),  # fmt: skip
                )
                answer.message_id = stored.id
            answer.status = self.sessions.get(conversation_id).status
            metrics.ANSWERS.labels(answer.mode, "true" if answer.cached else "false").inc()
            reply.answer = answer

        return Reply(pieces)

    def respond(self, text: str, history: Sequence[HistoryItem] = ()) -> Reply:
        """Answer the last message of a conversation the caller keeps (oldest first in `history`), streamed;
        nothing is stored but a knowledge gap when Kefu abstains. Personal data in the messages is only reported
        (`Answer.personal_data`, for the audit log); a conversation with an injection attempt in any customer
        message is refused as a whole (the caller writes the history, so earlier turns are as suspect)."""
        started = time.perf_counter()
        text = self.answerer.check(text)
        history = [HistoryItem(h.role, h.content[: self.answerer.max_question_chars * 2], h.query) for h in history
                   if h.role in ("user", "assistant", "agent") and h.content.strip()][-self.settings.history_messages :]  # fmt: skip

        def pieces(reply: Reply) -> Iterator[str]:
            language, intent = self.understand(text)
            if intent.name != ATTACK and any(detect_injection(h.content).flagged for h in history if h.role == "user"):
                intent = Intent(ATTACK, 1.0, "injection in the conversation")
            streamed = False
            if intent.name == ATTACK:
                answer = Answer(say("attack", language), MODE_ABSTAIN, language=language)
            elif intent.name in intents.HANDOFF_INTENTS:
                answer = Answer(say("no_agent_here", language), MODE_HANDOFF, language=language)
            elif intent.name in intents.SMALL_TALK:
                mode = MODE_ABSTAIN if intent.name == intents.CHITCHAT else MODE_SMALLTALK
                answer = Answer(say(intent.name, language), mode, language=language)
            else:
                products = self.products()
                slots: dict[str, object] = {}
                for message in [*(h.content for h in history if h.role == "user"), text]:
                    slots.update(find_slots(message, products))
                key = self._cache_key(text, history, slots)
                cached = self.cache.get(key) if key else None
                if cached is not None:
                    answer, cached.query = cached, text
                else:
                    decision = self.answerer.decide(text, history, slots or None)
                    if decision.abstained:
                        self.feedback_store.add_gap(decision.rewrite.query, language, GAP_ABSTAINED)
                    written = self.answerer.write(decision, history)
                    yield from written
                    reply.prompt, answer, streamed = written.prompt, written.finish(), True
                    if key:
                        self.cache.put(key, answer)
            if not streamed:
                yield answer.answer
            answer.intent = intent.name
            answer.personal_data = sorted({span.type for m in [text, *(h.content for h in history)] for span in find_pii(m)})
            answer.latency_ms = int((time.perf_counter() - started) * 1000)
            metrics.ANSWERS.labels(answer.mode, "true" if answer.cached else "false").inc()
            reply.answer = answer

        return Reply(pieces)

    def _holding(self, conversation_id: str, language: str) -> str:
        position = self.sessions.queue_position(conversation_id)
        text = say("waiting", language)
        if position is not None:
            text += say("queue", language, n=position, ahead=position - 1)
        return text

    def _hand_over(self, conversation_id: str, reason: str, language: str) -> Answer:
        self.sessions.transition(conversation_id, "request", reason=reason)
        key = {handoff.REASON_COMPLAINT: "complaint", handoff.REASON_UNANSWERED: "unanswered",
               handoff.REASON_SUSPICIOUS: "requested"}.get(reason, "requested")  # fmt: skip
        return Answer(say(key, language), MODE_HANDOFF, language=language)

    def request_human(self, conversation_id: str, language: str = "en") -> Answer:
        """The customer pressed "talk to a person" (or typed /human): hand over, and say so in the conversation."""
        status = self.sessions.get(conversation_id).status
        if handoff.is_handed_over(status):
            return Answer(self._holding(conversation_id, language), MODE_HANDOFF, language=language, status=status)
        answer = self._hand_over(conversation_id, handoff.REASON_REQUESTED, language)
        stored = self.sessions.add(conversation_id, NewMessage("assistant", answer.answer, answer.mode, intent=intents.HUMAN))
        answer.message_id, answer.session_id = stored.id, conversation_id
        answer.status = handoff.WAITING
        return answer

    # -- agents -------------------------------------------------------------------------------------------

    def agent_reply(self, conversation_id: str, agent: str, text: str) -> MessageRecord:
        """An agent's message to the customer; the agent takes the conversation if they had not yet."""
        text = (text or "").strip()
        if not text:
            raise InputError("the reply is empty")
        if len(text) > MAX_AGENT_MESSAGE_CHARS:
            raise InputError(f"the reply is {len(text)} characters long; the limit is {MAX_AGENT_MESSAGE_CHARS}")
        conversation = self.sessions.get(conversation_id)
        if conversation.status != handoff.WITH_AGENT or conversation.agent != agent:
            self.take(conversation_id, agent)
        return self.sessions.add(conversation_id, NewMessage("agent", text, author=agent))

    def take(self, conversation_id: str, agent: str):
        record = self.sessions.transition(conversation_id, "take", agent=agent)
        self._note(conversation_id, "take", agent)
        return record

    def release(self, conversation_id: str, agent: str):
        record = self.sessions.transition(conversation_id, "release")
        self._note(conversation_id, "release", agent)
        return record

    def resolve(self, conversation_id: str, agent: str):
        record = self.sessions.transition(conversation_id, "resolve")
        self._note(conversation_id, "resolve", agent)
        return record

    def _note(self, conversation_id: str, event: str, agent: str) -> None:
        self.sessions.add(conversation_id, NewMessage("system", SYSTEM_NOTES[event].format(agent=agent), author=agent))

    # -- feedback -----------------------------------------------------------------------------------------

    def feedback(self, message_id: int, rating: str, comment: str | None = None) -> FeedbackRecord:
        """Helpful (`up`) or not (`down`) on an answer; "not helpful" records the question as a knowledge gap."""
        record, message = self.feedback_store.rate(message_id, rating, comment)
        if rating == "down":
            question = message.query
            if not question and message.reply_to is not None:
                question = self.sessions.message(message.reply_to).content
            if question:
                language = detect_language(question) or "en"
                self.feedback_store.add_gap(question, language, GAP_NOT_HELPFUL, message.conversation_id, message_id)
        return record
