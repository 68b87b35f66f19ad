"""The two ends of a turn: where the conversation comes from and where the turn goes. The turn itself (the
dialogue manager's pipeline, `app.dialogue.manager`) is the same for both.

- `StoredConversation`: a conversation Kefu keeps (`app.dialogue.sessions`): loaded once as the turn starts (the
  conversation is created if new, and a customer may only continue one of theirs), the customer's message and
  the slots it fills stored before it is answered, the reply stored with the handover it may make. Three calls
  to the session store in all. Handing over asks for a person; a second abstention in a row hands over.
- `HeldConversation`: a conversation the caller keeps and sends whole each time (the OpenAI-compatible API):
  nothing is stored; the slots come from every customer message it holds; an injection attempt anywhere in it
  refuses the turn (the caller writes the history, so earlier turns are as suspect); asking for a person is
  told where people answer, since no agent could pick this conversation up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from app.access.auth import AGENT, PermissionDenied, Principal, owner_id
from app.answering.rewriting import HistoryItem
from app.answering.rules import MODE_ABSTAIN, MODE_HANDOFF, MODE_SMALLTALK, Answer
from app.dialogue import handoff, intents
from app.dialogue.replies import say
from app.dialogue.sessions import Loaded, MessageRecord, NewMessage, SessionStore
from app.dialogue.slots import find_slots
from app.dialogue.understanding import ATTACK, Understanding, personal_data_kinds
from app.guardrails.injection import detect_injection

HANDOVER_TEXT = {
    handoff.REASON_COMPLAINT: "complaint",
    handoff.REASON_UNANSWERED: "unanswered",
    handoff.REASON_SUSPICIOUS: "requested",
    handoff.REASON_REQUESTED: "requested",
}


class Conversation(Protocol):
    """What the turn pipeline needs of a conversation, whichever end it has."""

    id: str | None
    status: str  # the handoff status the turn starts in
    history: list[HistoryItem]  # what the answerer sees of it, oldest first
    slots: dict[str, Any]  # after `begin`: what the customer has told, this message included
    question_id: int | None  # after `begin`: the stored customer message (None where nothing is stored)

    def begin(self, message: Understanding) -> None:
        """The customer's message arrives (stored before it is answered, where the conversation is stored)."""

    def abstentions(self) -> int:
        """How many answers in a row, counting back from the newest, were abstentions (or refusals)."""

    def can_hand_over(self) -> bool:
        """Whether a person can take this conversation over."""

    def hand_over(self, reason: str, language: str) -> Answer:
        """Ask for a person (for `reason`), and what the customer is told."""

    def holding(self, language: str) -> Answer:
        """The reply while the customer waits for a person."""

    def personal_data(self, message: Understanding) -> list[str]:
        """Kinds of personal data the turn was given (for the audit log)."""

    def earlier_attack(self) -> bool:
        """An injection attempt earlier in the conversation refuses this turn too."""

    def finish(self, answer: Answer, message: Understanding, store: bool = True) -> None:
        """The reply is done: keep it (where the conversation is stored) and fill in what the answer reports of the
        conversation (its id, the stored message ids, the status after the turn)."""


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


class StoredConversation:
    def __init__(self, sessions: SessionStore, loaded: Loaded):
        self.sessions = sessions
        self.loaded = loaded
        self.id: str | None = loaded.conversation.id
        self.status = loaded.conversation.status
        self.history = history_items(loaded.recent)
        self.slots: dict[str, Any] = dict(loaded.conversation.slots)
        self.question_id: int | None = None
        self._hand_over: str | None = None

    @classmethod
    def open(cls, sessions: SessionStore, session_id: str | None, history: int, actor: Principal | None = None,
             customer_id: str | None = None) -> StoredConversation:  # fmt: skip
        """Load (or create) the conversation; PermissionDenied when `actor` is a customer and it is not theirs."""
        loaded = sessions.load(session_id, history, owner_id(actor), customer_id)
        if actor is not None and not actor.can(AGENT) and not loaded.created:
            if not actor.owns(loaded.conversation.id, loaded.conversation.owner):
                raise PermissionDenied("this conversation is not yours")
        return cls(sessions, loaded)

    def begin(self, message: Understanding) -> None:
        question = NewMessage("user", message.text, intent=message.intent.name)
        stored, conversation = self.sessions.record_question(self.id, question, message.slots, reopen=True)
        self.question_id = stored.id
        self.slots = conversation.slots
        self.status = conversation.status  # a resolved conversation is reopened

    def abstentions(self) -> int:
        return abstention_streak(self.loaded.recent)

    def can_hand_over(self) -> bool:
        return True

    def hand_over(self, reason: str, language: str) -> Answer:
        self._hand_over = reason
        return Answer(say(HANDOVER_TEXT.get(reason, "requested"), language), MODE_HANDOFF, language=language)

    def holding(self, language: str) -> Answer:
        text = say("waiting", language)
        position = self.loaded.queue_position
        if position is not None:
            text += say("queue", language, n=position, ahead=position - 1)
        return Answer(text, MODE_HANDOFF, language=language)

    def personal_data(self, message: Understanding) -> list[str]:
        return message.personal_data

    def earlier_attack(self) -> bool:
        return False  # each stored message was judged as it came, and refused ones are never context

    def finish(self, answer: Answer, message: Understanding, store: bool = True) -> None:
        reply = None
        if store:
            reply = NewMessage(
                "assistant", answer.answer, answer.mode, answer.sources, answer.latency_ms, intent=message.intent.name,
                query=answer.query, reply_to=self.question_id, confidence=answer.confidence,
            )  # fmt: skip
        if reply is not None or self._hand_over is not None:
            self.status, stored = self.sessions.record_answer(self.id, reply, self._hand_over)
            answer.message_id = stored.id if stored is not None else None
        answer.session_id, answer.question_id, answer.status = self.id, self.question_id, self.status


class HeldConversation:
    def __init__(self, history: Sequence[HistoryItem], products: Sequence[str] = ()):
        self.id: str | None = None
        self.status = handoff.BOT
        self.history = list(history)
        self._products = products
        self.slots: dict[str, Any] = {}
        self.question_id: int | None = None

    def begin(self, message: Understanding) -> None:
        for h in self.history:
            if h.role == "user":
                self.slots.update(find_slots(h.content, self._products))
        self.slots.update(message.slots)

    def abstentions(self) -> int:
        return 0

    def can_hand_over(self) -> bool:
        return False

    def hand_over(self, reason: str, language: str) -> Answer:
        return Answer(say("no_agent_here", language), MODE_HANDOFF, language=language)

    def holding(self, language: str) -> Answer:
        return self.hand_over(handoff.REASON_REQUESTED, language)

    def personal_data(self, message: Understanding) -> list[str]:
        kinds = set(message.personal_data)
        for h in self.history:
            kinds.update(personal_data_kinds(h.content))
        return sorted(kinds)

    def earlier_attack(self) -> bool:
        return any(detect_injection(h.content).flagged for h in self.history if h.role == "user")

    def finish(self, answer: Answer, message: Understanding, store: bool = True) -> None:
        pass  # nothing is kept: the caller holds the conversation
