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
Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.answering.rewriting import HistoryItem
from app.errors import InputError

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_MESSAGES = 1000


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
