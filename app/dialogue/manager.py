"""The dialogue manager: one customer message in, one reply out. It owns the turn rules; answering a question is the
stateless answerer's work (`app.answering.answerer`).

One pipeline serves both kinds of turn; they differ only at its ends (`app.dialogue.conversation`): a stored
conversation (`turn`: the web chat, `kefu ask --session`, the REST API) or one the caller holds and sends whole
(`respond`: the OpenAI-compatible API). A turn:

    load the conversation → understand the message once (`app.dialogue.understanding`: cleaned, language, intent,
    personal data, slots) → begin (store the message and its slots before anything can fail) → route by the
    handoff status and the intent → answer → finish (store the reply with any handover)

- Handed over (`waiting_agent`): a holding reply with the queue position, never an answer the assistant made
  up. With an agent (`with_agent`): the assistant stays silent; the message waits for the agent. Resolved: a
  new message reopens the conversation with the assistant.
- Asking for a person, or a complaint: the conversation is handed over at once, and the customer is told (a
  held conversation is told where people answer).
- A greeting, thanks or goodbye: a short reply without a search. Small talk: what Kefu can help with.
- An injection or jailbreak attempt (`app.guardrails.injection`): a polite refusal; it counts as an abstention
  towards handoff and three times towards the client's rate limit.
- A question: the answerer, given the conversation's recent messages and slots. Its second abstention in a
  row hands the conversation over instead. Every abstention is recorded as a knowledge gap.
- A question asked with no history and no slots is taken from the answer cache when it holds one
  (`app.answering.cache`), and kept there otherwise; every answer is counted by mode and by whether the cache
  gave it (`app.metrics.ANSWERS`).

Agents act through the same manager: take a conversation, reply (a message of role `agent`), release it back
to the assistant, resolve it. Feedback on an answer is stored, and "not helpful" is a knowledge gap too.
Role checks belong to the gate (`app.access.gate`); a customer's ownership of a conversation is checked as the
turn loads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from app import metrics
from app.access.auth import Principal
from app.answering.answerer import Answerer, Reply
from app.answering.cache import AnswerCache
from app.answering.rewriting import HistoryItem
from app.answering.rules import MODE_ABSTAIN, MODE_HANDOFF, MODE_SMALLTALK, Answer
from app.dialogue import handoff, intents
from app.dialogue.conversation import (
    Conversation,
    HeldConversation,
    StoredConversation,
    abstention_streak,
    history_items,
)
from app.dialogue.feedback import GAP_ABSTAINED, GAP_NOT_HELPFUL, FeedbackRecord, FeedbackStore
from app.dialogue.intents import Intent, IntentClassifier
from app.dialogue.replies import SYSTEM_NOTES, say
from app.dialogue.sessions import MessageRecord, NewMessage, SessionStore
from app.dialogue.understanding import ATTACK, Understanding, understand
from app.errors import InputError
from app.settings import DialogueSettings
from rag.analysis import detect_language

__all__ = ["ATTACK", "DialogueManager", "abstention_streak", "history_items"]

MAX_AGENT_MESSAGE_CHARS = 8000


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

    def understand(self, text: str) -> Understanding:
        """What a customer's (cleaned) message says: language, intent (`attack` for an injection attempt),
        personal data, slots."""
        return understand(text, self.intents, self.products())

    # -- the customer's turn ------------------------------------------------------------------------------

    def ask(self, text: str, session_id: str | None = None) -> Answer:
        return self.turn(text, session_id).finish()

    def turn(self, text: str, session_id: str | None = None, actor: Principal | None = None,
             customer_id: str | None = None) -> Reply:  # fmt: skip
        """Answer one customer message in the stored conversation `session_id` (a new one when None, owned by
        `actor`, for `customer_id`), streamed. PermissionDenied when `actor` is a customer writing into a
        conversation that is not theirs."""
        started = time.perf_counter()
        text = self.answerer.check(text)
        conversation = StoredConversation.open(self.sessions, session_id, self.settings.history_messages, actor, customer_id)
        return self._reply(conversation, text, started)

    def respond(self, text: str, history: Sequence[HistoryItem] = ()) -> Reply:
        """Answer the last message of a conversation the caller keeps (oldest first in `history`), streamed;
        nothing is stored but a knowledge gap when Kefu abstains. Personal data in the messages is only reported
        (`Answer.personal_data`, for the audit log)."""
        started = time.perf_counter()
        text = self.answerer.check(text)
        keep = self.answerer.max_question_chars * 2
        history = [HistoryItem(h.role, h.content[:keep], h.query) for h in history
                   if h.role in ("user", "assistant", "agent") and h.content.strip()][-self.settings.history_messages :]  # fmt: skip
        return self._reply(HeldConversation(history, self.products()), text, started)

    def _reply(self, conversation: Conversation, text: str, started: float) -> Reply:
        """The turn pipeline, between the conversation's two ends (see the module's docstring)."""

        def pieces(reply: Reply) -> Iterator[str]:
            message = self.understand(text)
            if message.intent.name != ATTACK and conversation.earlier_attack():
                message.intent = Intent(ATTACK, 1.0, "injection in the conversation")
            conversation.begin(message)
            language, intent, streamed, store = message.language, message.intent.name, False, True
            hand_over_now = conversation.can_hand_over() and conversation.abstentions() + 1 >= self.settings.handoff_after_abstentions
            if conversation.status == handoff.WAITING:
                answer = conversation.holding(language)
            elif conversation.status == handoff.WITH_AGENT:
                answer, store = Answer(say("with_agent", language), MODE_HANDOFF, language=language), False
            elif intent == ATTACK:  # a polite refusal; it counts towards handoff and the client's rate limit
                if hand_over_now:
                    answer = conversation.hand_over(handoff.REASON_SUSPICIOUS, language)
                else:
                    answer = Answer(say("attack", language), MODE_ABSTAIN, language=language)
            elif intent in intents.HANDOFF_INTENTS:
                reason = handoff.REASON_COMPLAINT if intent == intents.COMPLAINT else handoff.REASON_REQUESTED
                answer = conversation.hand_over(reason, language)
            elif intent in intents.SMALL_TALK:
                mode = MODE_ABSTAIN if intent == intents.CHITCHAT else MODE_SMALLTALK
                answer = Answer(say(intent, language), mode, language=language)
            else:
                history = conversation.history
                key = self._cache_key(message, conversation)  # any earlier message, even a note, is a conversation
                cached = self.cache.get(key) if key else None
                if cached is not None:
                    answer, cached.query = cached, message.text
                else:
                    decision = self.answerer.decide(message.text, history, conversation.slots or None, language=language)
                    if decision.abstained:
                        self.feedback_store.add_gap(decision.rewrite.query, language, GAP_ABSTAINED, conversation.id,
                                                    conversation.question_id)  # fmt: skip
                    if decision.abstained and hand_over_now:
                        answer = conversation.hand_over(handoff.REASON_UNANSWERED, language)
                        answer.query = decision.rewrite.query
                    else:
                        written = self.answerer.write(decision, history)
                        yield from written
                        reply.prompt, reply.usage, answer, streamed = written.prompt, written.usage, written.finish(), True
                        if answer.mode == MODE_ABSTAIN and conversation.can_hand_over():
                            offer = say("offer_person", language)  # a person can take this conversation over
                            answer.answer += offer
                            yield offer
                        if key:
                            self.cache.put(key, answer, conversation.id)
            if not streamed:
                yield answer.answer
            answer.intent = intent
            answer.personal_data = conversation.personal_data(message)
            answer.latency_ms = int((time.perf_counter() - started) * 1000)
            conversation.finish(answer, message, store)
            metrics.ANSWERS.labels(answer.mode, "true" if answer.cached else "false").inc()
            reply.answer = answer

        return Reply(pieces)

    def _cache_key(self, message: Understanding, conversation: Conversation) -> str | None:
        """The answer cache's key for a question that depends on no conversation (nothing said before it, no
        slots); None otherwise, or when the question holds personal data."""
        if self.cache is None or conversation.history or conversation.slots or message.personal_data:
            return None
        return self.cache.key(message.text, personal=False)

    def request_human(self, conversation_id: str, language: str = "en") -> Answer:
        """The customer pressed "talk to a person" (or typed /human): hand over, and say so in the conversation."""
        status = self.sessions.get(conversation_id).status
        if handoff.is_handed_over(status):
            position = self.sessions.queue_position(conversation_id)
            text = say("waiting", language) + (say("queue", language, n=position, ahead=position - 1) if position else "")
            return Answer(text, MODE_HANDOFF, language=language, session_id=conversation_id, status=status)
        self.sessions.transition(conversation_id, "request", reason=handoff.REASON_REQUESTED)
        answer = Answer(say("requested", language), MODE_HANDOFF, language=language)
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
