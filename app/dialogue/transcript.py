"""What a customer is shown of their conversation, for channels that render it themselves (the website widget):
each message as plain data whose text has passed the output policy, and the conversation's handoff state. Pure.

- Text: every message but the customer's own passes the output policy again (`app.guardrails.output_policy`):
  answers passed it when written, but an agent's reply and a system note are shown only through here. The
  customer's own words are shown as stored (personal data masked). A channel renders the text as text, never
  as HTML.
- Sources: numbered as the answer cites them (`[1]` is the first), each with what a citation chip shows (title,
  section, page, the public name of the source) and the passage as plain text (Markdown emphasis dropped),
  through the policy and clipped; never scores, chunk ids or server paths.
- Ratings: which messages may be rated (an answer from the knowledge base or an agent's reply; not a holding
  reply, a greeting or a note) and the customer's latest rating of each.
- State: the handoff status, the agent's name while one is with the customer, and the queue position while
  the conversation waits for one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.answering.rules import MODE_HANDOFF, MODE_SMALLTALK
from app.dialogue import handoff
from app.dialogue.sessions import ConversationRecord, MessageRecord
from app.guardrails.output_policy import OutputPolicy, public_source

MAX_PASSAGE_CHARS = 1200
MAX_TEXT_CHARS = 8000
_EMPHASIS = re.compile(r"\*\*|__|`")  # a passage is shown as plain text: its Markdown emphasis would show as marks


@dataclass
class CustomerView:
    """A conversation as its customer sees it: the messages asked for (oldest first) and its state now."""

    session_id: str
    status: str
    agent: str | None = None
    queue_position: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "status": self.status, "agent": self.agent,
                "queue_position": self.queue_position, "messages": self.messages}  # fmt: skip


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rateable(role: str, mode: str | None) -> bool:
    return role == "agent" or (role == "assistant" and mode not in (MODE_HANDOFF, MODE_SMALLTALK, None))


def visible_sources(sources: Sequence[Mapping[str, Any]], policy: OutputPolicy) -> list[dict[str, Any]]:
    shown = []
    for number, source in enumerate(sources, start=1):
        text = _EMPHASIS.sub("", " ".join(str(source.get("text") or "").split()))
        shown.append({
            "n": number,
            "title": policy.apply(str(source.get("title") or source.get("doc_id") or "")).text,
            "section": policy.apply(str(source.get("section") or "")).text,
            "page": source.get("page") if isinstance(source.get("page"), int) else None,
            "source": public_source(str(source.get("source") or "")),
            "text": policy.apply(clip(text, MAX_PASSAGE_CHARS)).text,
        })  # fmt: skip
    return shown


def visible_message(message: MessageRecord, policy: OutputPolicy, rating: str | None = None) -> dict[str, Any]:
    text = message.content if message.role == "user" else policy.apply(message.content).text
    return {
        "id": message.id,
        "role": message.role,
        "text": clip(text, MAX_TEXT_CHARS),
        "author": message.author if message.role == "agent" else None,
        "mode": message.mode,
        "sources": visible_sources(message.sources, policy) if message.role == "assistant" else [],
        "rateable": rateable(message.role, message.mode),
        "rating": rating,
        "created_at": message.created_at,
    }


def customer_view(conversation: ConversationRecord, messages: Sequence[MessageRecord], queue_position: int | None,
                  ratings: Mapping[int, str], policy: OutputPolicy) -> CustomerView:  # fmt: skip
    return CustomerView(
        conversation.id,
        conversation.status,
        conversation.agent if conversation.status == handoff.WITH_AGENT else None,
        queue_position,
        [visible_message(m, policy, ratings.get(m.id)) for m in messages],
    )

