"""Handoff: where a conversation stands between the assistant and a person. A pure state machine.

    bot ──request──▶ waiting_agent ──take / agent reply──▶ with_agent ──resolve──▶ resolved
     ▲                    │                                    │                      │
     └──────release───────┴────────────release─────────────────┘   customer writes ───┘ (reopen → bot)

- `bot`: the assistant answers.
- `waiting_agent`: a person was asked for (the customer asked, complained, or the assistant could not answer
  twice in a row); the customer gets holding replies, never an answer the assistant made up. The queue is
  every conversation in this state, oldest first.
- `with_agent`: an agent has taken it; the assistant stays silent, the agent's replies are messages of the
  conversation.
- `resolved`: the agent closed it; a new customer message reopens it with the assistant.

An agent may also take or resolve a conversation the assistant is still handling. Anything else is an
`InputError` that says which moves the current status allows.
"""

from __future__ import annotations

from app.errors import InputError

BOT = "bot"
WAITING = "waiting_agent"
WITH_AGENT = "with_agent"
RESOLVED = "resolved"
STATUSES = (BOT, WAITING, WITH_AGENT, RESOLVED)

# Why a conversation was handed over (conversations.handoff_reason).
REASON_REQUESTED = "requested"
REASON_COMPLAINT = "complaint"
REASON_UNANSWERED = "unanswered"
REASON_AGENT = "agent"  # an agent joined on their own
REASON_SUSPICIOUS = "suspicious"  # repeated prompt-injection attempts
REASONS = (REASON_REQUESTED, REASON_COMPLAINT, REASON_UNANSWERED, REASON_AGENT, REASON_SUSPICIOUS)

# event -> {from status: to status}
TRANSITIONS: dict[str, dict[str, str]] = {
    "request": {BOT: WAITING, RESOLVED: WAITING},
    "take": {BOT: WITH_AGENT, WAITING: WITH_AGENT, WITH_AGENT: WITH_AGENT},
    "release": {WAITING: BOT, WITH_AGENT: BOT},
    "resolve": {BOT: RESOLVED, WAITING: RESOLVED, WITH_AGENT: RESOLVED},
    "reopen": {RESOLVED: BOT},
}
EVENTS = tuple(TRANSITIONS)


def next_status(current: str, event: str) -> str:
    """The status `event` leads to from `current`; InputError when the move is not allowed."""
    if event not in TRANSITIONS:
        raise InputError(f"unknown handoff event {event!r}: choose one of {', '.join(EVENTS)}")
    moves = TRANSITIONS[event]
    if current not in moves:
        allowed = [e for e, m in TRANSITIONS.items() if current in m]
        raise InputError(
            f"cannot {event} a conversation that is {current}"
            + (f": it can only {' / '.join(allowed)}" if allowed else "")
        )
    return moves[current]


def is_handed_over(status: str) -> bool:
    """True while a person, not the assistant, is to answer."""
    return status in (WAITING, WITH_AGENT)
