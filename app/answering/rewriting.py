"""Making a follow-up standalone: "and opened headphones?" after "How long do I have to return an item?"
becomes one question retrieval can search for. Retrieval never sees only the follow-up.

`QueryRewriter` is the protocol: (question, history, slots) → `Rewrite`. Two rewriters:

- `HeuristicRewriter` (pure, no model): a message that leans on the conversation (it opens or ends like a
  continuation — "and …", "what about …", "那……", "……呢？" — or refers back with a pronoun — it, they, his,
  它, 这款 …) is completed from the conversation. An elliptical follow-up is merged into the previous
  standalone question ("退货期限是多久？" + "那耳机呢？" → "耳机的退货期限是多久？"); a pronoun is replaced
  by what it refers to ("how do I reset it?" → "how do I reset Lumen Buds Pro?"): the product in the slots
  when there is one; otherwise "it" (它, 这款) is the latest named thing (a capitalised name) the customer
  mentioned, and a personal pronoun (he, she, his, her, they, 他, 她 …) the conversation's topic, the first
  name the customer gave. A short name stands for the fuller one it is part of ("Zappa" after "Frank
  Zappa"). The topic rule and the name clean-up were measured on CANARD (see the README's figures).
- `ModelRewriter`: a short prompt asks the language model to condense the conversation and the follow-up
  into one question; an empty, runaway or unrelated output falls back to the heuristic.

Both leave a message that does not lean on the conversation as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ingest.cjk import has_cjk

_FOLLOW_UP_RE = re.compile(
    r"^\s*(and|also|what about|how about|what if|same for|then|or)\b|^\s*(那|那么|还有|另外|如果|那如果)|[呢]\s*[?？]?\s*$",
    re.IGNORECASE,
)
_ELLIPSIS_EN_RE = re.compile(
    r"^\s*(?:and|also|or|then)?\s*(?:what|how)\s+about\s+(?P<x>.+?)\s*[?.!]*\s*$"
    r"|^\s*(?:and|also|or)\s+(?:for\s+|with\s+|in\s+)?(?P<y>.+?)\s*[?.!]*\s*$"
    r"|^\s*same\s+for\s+(?P<z>.+?)\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_ELLIPSIS_ZH_RE = re.compile(r"^\s*(?:那么|那|还有|另外)?\s*(?P<x>[^，,。？?！!]{1,20}?)\s*呢\s*[?？]?\s*$")
_PRONOUN_EN_RE = re.compile(r"\b(it|its|they|them|their|he|him|his|she|her)\b", re.IGNORECASE)
_POSSESSIVE = {"its", "their", "his", "her"}
_PRONOUN_ZH_RE = re.compile(r"它们|它|这款|那款|这个产品|那个产品|他们|她们|他|她")
# Pronouns for people (and groups): on CANARD they refer to the conversation's topic far more often than to
# the latest name (he: 297 rewrites closer to the gold with the topic, 48 with the latest name).
_PERSONAL = {"he", "him", "his", "she", "her", "they", "them", "their", "他们", "她们", "他", "她"}
_POSSESSIVE_S_RE = re.compile(r"['’]s$")
_NAME_RE = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of|the|de|and|&)?\s*[A-Z0-9][\w'’.-]*)*")
_QUESTION_WORDS = {
    "what", "when", "where", "who", "whom", "whose", "which", "why", "how", "is", "are", "was", "were", "do",
    "does", "did", "can", "could", "should", "would", "will", "may", "i", "my", "the", "a", "an", "and", "hi",
    "hello", "please", "thanks", "ok", "okay", "yes", "no", "also", "then", "so", "but", "or", "if", "in", "on",
}  # fmt: skip
_MAX_REWRITE_CHARS = 400


@dataclass(frozen=True)
class HistoryItem:
    """One earlier message: its role, its text and, for a customer's, the standalone query Kefu searched."""

    role: str
    content: str
    query: str | None = None


@dataclass(frozen=True)
class Rewrite:
    query: str  # what retrieval searches for
    rewritten: bool  # False: the question stood on its own
    method: str = "none"  # none | heuristic | model


class QueryRewriter(Protocol):
    name: str

    def rewrite(self, question: str, history: Sequence[HistoryItem], slots: Mapping[str, Any] | None = None) -> Rewrite:
        """The question made standalone from the conversation so far (oldest first)."""
        ...

    def with_context(self, question: str, history: Sequence[HistoryItem], slots: Mapping[str, Any] | None = None) -> Rewrite:
        """The question searched together with the conversation's subject: the retry for a message that found
        nothing on its own."""
        ...


def is_follow_up(question: str) -> bool:
    """A turn that opens like a continuation ("and ...", "what about ...", "那……") or ends like one ("……呢？")."""
    return bool(_FOLLOW_UP_RE.search(question))


def leans_on_context(question: str) -> bool:
    """A follow-up, or a message that refers back with a pronoun."""
    return is_follow_up(question) or bool(_PRONOUN_EN_RE.search(question) or _PRONOUN_ZH_RE.search(question))


def _strip_end(text: str) -> str:
    return text.strip().rstrip("?？.。!！ ")


def names_in(text: str) -> list[str]:
    """Capitalised names in `text` ("Anna Vissi", "Lumen Buds Pro"), a sentence's first question word and a
    possessive 's excluded ("What was Hedin's role" → "Hedin")."""
    found = []
    for match in _NAME_RE.finditer(text):
        words = match.group().split()
        while words and words[0].lower() in _QUESTION_WORDS:
            words = words[1:]
        name = _POSSESSIVE_S_RE.sub("", " ".join(words)).strip(".’'")
        if name and name.lower() not in _QUESTION_WORDS:
            found.append(name)
    return found


def previous_question(history: Sequence[HistoryItem]) -> str | None:
    """The customer's latest earlier message, standalone as Kefu searched it when known."""
    for item in reversed(history):
        if item.role == "user":
            return item.query or item.content
    return None


def _names_by(history: Sequence[HistoryItem]) -> list[str]:
    """Names the customer mentioned, oldest first (failing that, names anyone mentioned)."""
    for roles in (("user",), ("user", "assistant", "agent", "system")):
        names = [n for item in history if item.role in roles for n in names_in(item.query or item.content)[:1]]
        if names:
            return names
    return []


def _fullest(name: str, names: Sequence[str]) -> str:
    """The earliest longer name `name` is a part of ("Zappa" in "Frank Zappa"), else `name`."""
    words = name.lower().split()
    for other in names:
        other_words = other.lower().split()
        if len(other_words) > len(words) and all(w in other_words for w in words):
            return other
    return name


def subject(history: Sequence[HistoryItem], slots: Mapping[str, Any] | None = None) -> str | None:
    """What the conversation is about now: the product in the slots, else the latest name the customer (or,
    failing that, anyone) mentioned, in its fullest earlier form, else None."""
    if slots and slots.get("product"):
        return str(slots["product"])
    names = _names_by(history)
    return _fullest(names[-1], names) if names else None


def topic(history: Sequence[HistoryItem], slots: Mapping[str, Any] | None = None) -> str | None:
    """What the conversation is about as a whole: the product in the slots, else the first name the customer
    (or, failing that, anyone) mentioned, else None."""
    if slots and slots.get("product"):
        return str(slots["product"])
    names = _names_by(history)
    return names[0] if names else None


def referent(question: str, history: Sequence[HistoryItem], slots: Mapping[str, Any] | None = None) -> str | None:
    """What the question's first pronoun refers to: the topic for a personal pronoun (he, she, they, 他 …),
    the current subject for "it" (它, 这款 …), the subject when there is no pronoun."""
    match = (_PRONOUN_ZH_RE if has_cjk(question) else _PRONOUN_EN_RE).search(question)
    if match and match.group().lower() in _PERSONAL:
        return topic(history, slots)
    return subject(history, slots)


def _replace_pronoun(question: str, subj: str) -> str | None:
    if has_cjk(question):
        match = _PRONOUN_ZH_RE.search(question)
        return question[: match.start()] + subj + question[match.end() :] if match else None
    match = _PRONOUN_EN_RE.search(question)
    if not match:
        return None
    word = match.group().lower()
    if subj.lower() in question.lower():
        return None
    replacement = subj + "'s" if word in _POSSESSIVE and not (word == "her" and _her_is_object(question, match.end())) else subj
    return question[: match.start()] + replacement + question[match.end() :]


def _her_is_object(question: str, end: int) -> bool:
    """"give her" (object) rather than "her album" (possessive): her followed by punctuation or a small word."""
    rest = question[end:].lstrip()
    return not rest or not rest[0].isalnum() or rest.split()[0].lower() in {"to", "about", "with", "for", "in", "on", "at"}


def _merge(previous: str, remainder: str) -> str:
    """An elliptical follow-up merged into the previous question."""
    if has_cjk(previous) or has_cjk(remainder):
        return f"{remainder}的{_strip_end(previous)}？" if not previous.startswith(remainder) else previous
    return f"{_strip_end(previous)} for {_strip_end(remainder)}?"


class HeuristicRewriter:
    name = "heuristic"

    def rewrite(self, question: str, history: Sequence[HistoryItem], slots: Mapping[str, Any] | None = None) -> Rewrite:
        if not history or not leans_on_context(question):
            return Rewrite(question, False)
        previous = previous_question(history)
        subj = referent(question, history, slots)
        ellipsis = _ELLIPSIS_ZH_RE.match(question) if has_cjk(question) else _ELLIPSIS_EN_RE.match(question)
        if ellipsis and previous:
            remainder = next(g for g in ellipsis.groups() if g)
            if not _PRONOUN_EN_RE.fullmatch(remainder) and not _PRONOUN_ZH_RE.fullmatch(remainder):
                return Rewrite(_merge(previous, remainder), True, self.name)
        if subj:
            replaced = _replace_pronoun(question, subj)
            if replaced:
                return Rewrite(replaced, True, self.name)
        return self.with_context(question, history, slots)

    def with_context(self, question: str, history: Sequence[HistoryItem], slots: Mapping[str, Any] | None = None) -> Rewrite:
        """The question with the conversation's subject (or previous question) beside it: a wider search for
        a message that found nothing on its own."""
        context = subject(history, slots) or previous_question(history)
        if not context or context.lower() in question.lower():
            return Rewrite(question, False)
        if has_cjk(question) or has_cjk(context):
            return Rewrite(f"{_strip_end(context)} {question}", True, self.name)
        return Rewrite(f"{_strip_end(question)} ({_strip_end(context)})?", True, self.name)


# -- with a language model ------------------------------------------------------------------------------------

REWRITE_SYSTEM = (
    "You rewrite the customer's last message as one standalone question that can be understood without the "
    "conversation. Replace pronouns and fill in what the message leaves out, using the conversation. Keep the "
    "customer's wording and language. Reply with the rewritten question only."
)
REWRITE_EXAMPLES = [
    (
        "Customer: How long do I have to return an item?\nAssistant: 30 days from delivery.",
        "And opened headphones?",
        "How long do I have to return opened headphones?",
    ),
    ("Customer: 退货期限是多久？\nAssistant: 收货后30天内。", "那耳机呢？", "耳机的退货期限是多久？"),
]


def rewrite_messages(question: str, history: Sequence[HistoryItem], turns: int = 6) -> list[dict[str, str]]:
    """The chat messages that ask a model for the standalone question (the last `turns` messages as context)."""
    speaker = {"user": "Customer", "assistant": "Assistant", "agent": "Agent"}
    lines = [f"{speaker[h.role]}: {h.content}" for h in history[-turns:] if h.role in speaker]
    messages = [{"role": "system", "content": REWRITE_SYSTEM}]
    for context, follow_up, rewritten in REWRITE_EXAMPLES:
        messages.append({"role": "user", "content": f"Conversation:\n{context}\n\nLast message: {follow_up}"})
        messages.append({"role": "assistant", "content": rewritten})
    messages.append({"role": "user", "content": "Conversation:\n" + "\n".join(lines) + f"\n\nLast message: {question}"})
    return messages


def clean_model_rewrite(text: str, question: str) -> str | None:
    """The model's first line, unquoted; None when it is empty, runaway, or shares nothing with the question."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    line = re.sub(r"^(standalone question|rewritten question|question|问题)\s*[:：]\s*", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'“”‘’「」").strip()
    if not line or len(line) > max(_MAX_REWRITE_CHARS, 4 * len(question)) or not line.isprintable():
        return None
    words = lambda s: set(re.findall(r"\w+", s.lower()))  # noqa: E731
    if has_cjk(question):
        shared = set(question) & set(line) - set(" ，。？！?,.!呢那")
    else:
        shared = words(question) & words(line) - _QUESTION_WORDS
    if not shared and len(words(question) - _QUESTION_WORDS) > 0:
        return None
    return line


class ModelRewriter:
    """Asks the language model for the standalone question; the heuristic when it gives nothing usable."""

    name = "model"

    def __init__(self, generate: Callable[[list[dict[str, str]]], str], fallback: HeuristicRewriter | None = None):
        self.generate = generate  # messages -> the model's reply text
        self.fallback = fallback or HeuristicRewriter()

    def rewrite(self, question: str, history: Sequence[HistoryItem], slots: Mapping[str, Any] | None = None) -> Rewrite:
        if not history or not leans_on_context(question):
            return Rewrite(question, False)
        rewritten = clean_model_rewrite(self.generate(rewrite_messages(question, history)), question)
        if rewritten is None:
            return self.fallback.rewrite(question, history, slots)
        return Rewrite(rewritten, rewritten != question, self.name)

    def with_context(self, question: str, history: Sequence[HistoryItem], slots: Mapping[str, Any] | None = None) -> Rewrite:
        return self.fallback.with_context(question, history, slots)
