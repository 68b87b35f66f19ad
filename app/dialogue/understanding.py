"""Understanding a customer's message, once per turn: what the rest of the turn is handed instead of working it
out again.

`understand` takes the message as the customer sent it and returns an `Understanding`: the text cleaned
(`app.answering.answerer.checked_question`: InputError when it is empty, too long or unreadable), its language,
its intent (an injection or jailbreak attempt is the intent `attack`, `app.guardrails.injection`; otherwise
`app.dialogue.intents`), the kinds of personal data it holds (`app.guardrails.pii`: for the audit log and the
answer cache, which never keeps a personal question) and the slots it fills (`app.dialogue.slots`).

The caller cleans the message first, at once (a bad message is refused before anything streams); the rest is
worked out when the turn begins. Knows nothing about conversations or storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.dialogue.intents import Intent, IntentClassifier
from app.dialogue.slots import find_slots
from app.guardrails.injection import detect_injection
from app.guardrails.pii import find_pii
from rag.analysis import detect_language

ATTACK = "attack"  # the intent of a message the injection detector flagged


@dataclass
class Understanding:
    text: str  # cleaned
    language: str
    intent: Intent
    personal_data: list[str] = field(default_factory=list)  # kinds of personal data in the message, sorted
    slots: dict[str, Any] = field(default_factory=dict)  # what the message tells about the customer's case


def understand(text: str, intents: IntentClassifier, products: Sequence[str] = ()) -> Understanding:
    """What a cleaned message says (see the module's docstring)."""
    language = detect_language(text) or "en"
    verdict = detect_injection(text)
    intent = Intent(ATTACK, verdict.score, "injection") if verdict.flagged else intents.classify(text)
    return Understanding(text, language, intent, personal_data_kinds(text), find_slots(text, products))


def personal_data_kinds(text: str) -> list[str]:
    return sorted({span.type for span in find_pii(text)})
