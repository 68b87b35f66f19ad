"""What an extractive answer quotes from a passage: the piece that answers the question, readable on its own.
Pure: terms, weights and the question come in; text goes out.

A passage is read as units a customer could be shown: sentences, table rows (each with its header: "Option:
Express; Delivery time: 1-2 business days"; a header or separator row is never a unit), list items, and headings
(never quoted). Each unit is scored by the question's terms it holds, weighted by their idf, where the terms every
unit of the passage shares (its product, its subject) count little: they say what the passage is about, not
which of its sentences answers. A question that asks for a kind of fact (how long, what time, how much, how
many, when) prefers a unit that states one: "What time do your stations close?" wants a time, and "How long does
charging take?" a duration.

The chosen unit brings along what it needs to make sense: a list item its lead-in ("To return an item:"), a
sentence that opens with "This", "It" or "该" the sentence before it. A unit with no word of its own worth
quoting (a heading, a bare date, a fragment of two words) is never chosen; when nothing in the passage beats
that, the passage's first readable unit is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.chunking import split_sentences
from ingest.cjk import CJK_CLASS

Terms = Callable[[str], Sequence[str]]

SHARED_TERM_WEIGHT = 0.25  # a term in most of a passage's units counts this much
SHARED_SHARE = 0.6  # ... "most": in at least this share of them (and at least two)
ASKED_FACT_BONUS = 0.5  # a unit stating the asked kind of fact gains this share of the question's weight

_LIST_START_RE = re.compile(r"^\s*([-*+]|\d+[.)]|\|)")
_ITEM_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_NUMBERED_RE = re.compile(r"^\s*\d+[.)]\s+")
MAX_STEPS = 6  # a numbered list quoted whole stops here
_HEADING_RE = re.compile(r"^\s*#{1,6}\s+")
_SEPARATOR_RE = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?$")
_CJK_END_RE = re.compile(f"[{CJK_CLASS}，、：]$")
_MARKUP_RE = re.compile(r"\*\*|__|`")
_ANAPHOR_RE = re.compile(r"^(this|that|these|those|it|they|such|there|then|also|however|otherwise|该|此|这|其|它|他们|此外|但|否则)\b",
                         re.IGNORECASE)  # fmt: skip
_WORD_RE = re.compile(rf"[A-Za-z]{{2,}}|[{CJK_CLASS}]")

# The kinds of fact a question may ask for, how a question asks for each, and how a unit states one.
_DURATION = r"\d+(?:[.,]\d+)?\s*(?:-|–|to|至|~)?\s*\d*\s*(?:business |working |calendar )?(?:days?|hours?|hrs?|weeks?|months?|years?|minutes?|mins?)\b" \
            r"|\d+\s*(?:个)?(?:工作日|天|小时|周|星期|个月|月|年|分钟)"  # fmt: skip
_TIME = r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\b\d{1,2}:\d{2}\b|\bnoon\b|\bmidnight\b|\d{1,2}\s*[点時]|[上下]午"
_MONEY = r"[$¥€£]\s?\d|\b\d+(?:[.,]\d+)?\s*(?:元|块|yuan|rmb|cny|hkd|usd|eur|dollars?)\b|\bfree\b|免费|\d+(?:\.\d+)?\s*元"
_NUMBER = r"\d"
_DATE = _DURATION + r"|\b(?:january|february|march|april|may|june|july|august|september|october|november|december)\b" \
        r"|\d+\s*月\s*\d+\s*日|\bmonday|tuesday|wednesday|thursday|friday|saturday|sunday\b|周[一二三四五六日]"  # fmt: skip
ASKED_FACTS: dict[str, tuple[re.Pattern, re.Pattern]] = {
    "time": (re.compile(r"\bwhat time\b|\b(?:open|close|closing|opening) (?:time|hours)\b|\bwhen do (?:you|they|stores?|stations?|shops?) (?:open|close)\b|几点|什么时间|营业时间", re.I),
             re.compile(_TIME, re.I)),
    "duration": (re.compile(r"\bhow long\b|\bhow many (?:days|hours|weeks|months|years|minutes)\b|多久|多长时间|几天|多少天|几个工作日", re.I),
                 re.compile(_DURATION, re.I)),
    "price": (re.compile(r"\bhow much\b|\bcost\b|\bprice\b|\bfee\b|\bcharge\b|多少钱|费用|价格|收费|多少元|贵", re.I),
              re.compile(_MONEY, re.I)),
    "amount": (re.compile(r"\bhow many\b|多少|几个|几次", re.I), re.compile(_NUMBER)),
    "date": (re.compile(r"\bwhen\b|\bby when\b|\bdeadline\b|什么时候|何时|截止", re.I), re.compile(_DATE, re.I)),
}  # fmt: skip


def asked_fact(question: str) -> str | None:
    """The kind of fact a question asks for ("time", "duration", "price", "amount", "date"), or None."""
    for kind, (asks, _) in ASKED_FACTS.items():
        if asks.search(question):
            return kind
    return None


def states_fact(text: str, kind: str | None) -> bool:
    return kind is not None and bool(ASKED_FACTS[kind][1].search(text))


def logical_lines(text: str) -> list[str]:
    """Undo hard wrapping: join lines of a paragraph, keep list items, table rows and headings on their own."""
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            out.append("")
            continue
        starts_own = _LIST_START_RE.match(stripped) or _HEADING_RE.match(stripped)
        if out and out[-1] and not starts_own and not out[-1].lstrip().startswith(("|", "#")):
            joiner = "" if _CJK_END_RE.search(out[-1]) else " "
            out[-1] = out[-1] + joiner + stripped
        else:
            out.append(stripped)
    return [line for line in out if line]


@dataclass
class Unit:
    """A piece of a passage a customer could be shown."""

    text: str  # as it is quoted
    kind: str  # "sentence", "row", "item" or "heading"
    lead: int | None = None  # the unit it needs before it to make sense
    steps: int | None = None  # a numbered list's items share the index of its first item: steps are quoted together


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def units(text: str) -> list[Unit]:
    """The passage as quotable units, in order (see the module's docstring)."""
    lines = logical_lines(text)
    out: list[Unit] = []
    header: list[str] | None = None
    lead_in: int | None = None  # the sentence a following list hangs from ("To return an item:")
    steps: int | None = None
    for n, line in enumerate(lines):
        if not _NUMBERED_RE.match(line):
            steps = None
        if line.startswith("|"):
            if _SEPARATOR_RE.match(line):
                continue
            cells = _cells(line)
            if n + 1 < len(lines) and _SEPARATOR_RE.match(lines[n + 1]):
                header = cells  # a header row is never quoted: it names the columns of the rows below
                continue
            if header and len(header) == len(cells):
                shown = "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells) if c)
            else:
                filled = [c for c in cells if c]
                shown = f"{filled[0]}: {'; '.join(filled[1:])}" if len(filled) >= 2 else " ".join(filled)
            out.append(Unit(_MARKUP_RE.sub("", shown), "row"))
            continue
        header = None
        if _HEADING_RE.match(line):
            out.append(Unit(_HEADING_RE.sub("", line).strip(), "heading"))
            lead_in = None
            continue
        if _ITEM_RE.match(line):
            if _NUMBERED_RE.match(line) and steps is None:
                steps = len(out)
            out.append(Unit(_MARKUP_RE.sub("", _ITEM_RE.sub("", line)).strip(), "item", lead_in, steps))
            continue
        for sentence in split_sentences(line):
            sentence = _MARKUP_RE.sub("", sentence).strip()
            if not sentence:
                continue
            lead = len(out) - 1 if out and out[-1].kind == "sentence" and _ANAPHOR_RE.match(sentence) else None
            out.append(Unit(sentence, "sentence", lead))
        lead_in = len(out) - 1 if out and out[-1].kind == "sentence" and out[-1].text.endswith((":", "：")) else None
    return out


def _quotable(unit: Unit, terms: Sequence[str]) -> bool:
    """Worth quoting alone: not a heading, and holding words of its own beyond a date or a number."""
    if unit.kind == "heading":
        return False
    words = _WORD_RE.findall(unit.text)
    return len(words) >= 3 and len(terms) >= 2


def _join(texts: Sequence[str]) -> str:
    out = ""
    for text in texts:
        if out:
            out += "" if _CJK_END_RE.search(out) or out.endswith(("。", "！", "？", "；", "：")) else " "
        out += text
    return out


def best_excerpt(text: str, query_terms: Sequence[str], weights: dict[str, float], terms: Terms, max_units: int = 2,
                 question: str = "") -> str:  # fmt: skip
    """The passage's unit that best answers the question, with what it needs before it, and the next unit when it
    also bears on the question (or the chosen one is short); units keep their order."""
    found = units(text)
    if not found:
        return text.strip()
    unit_terms = [set(terms(u.text)) for u in found]
    wanted = set(query_terms)
    readable = [i for i, u in enumerate(found) if _quotable(u, list(unit_terms[i]))]
    common = {t for t in wanted if len(readable) >= 2 and sum(t in unit_terms[i] for i in readable) >= SHARED_SHARE * len(readable)}

    def weight(term: str) -> float:
        return weights.get(term, 1.0) * (SHARED_TERM_WEIGHT if term in common else 1.0)

    total = sum(weight(t) for t in wanted) or 1.0
    kind = asked_fact(question)

    def score(i: int) -> float:
        own = sum(weight(t) for t in unit_terms[i] & wanted) / total
        return own + (ASKED_FACT_BONUS if own > 0 and states_fact(found[i].text, kind) else 0.0)

    candidates = readable or list(range(len(found)))
    best = max(candidates, key=lambda i: (score(i), -i))
    if found[best].steps is not None:  # one step of a procedure means nothing alone: quote the procedure
        first = found[best].steps
        run = [i for i in range(first, len(found)) if found[i].steps == first][:MAX_STEPS]
        lead = found[first].lead
        numbered = [f"{k}. {found[i].text}" for k, i in enumerate(run, start=1)]
        return _join(([found[lead].text] if lead is not None else []) + numbered)
    chosen = [best]
    while found[chosen[0]].lead is not None and len(chosen) < max_units + 1:
        chosen.insert(0, found[chosen[0]].lead)  # what it hangs from comes first
    following = best + 1
    if len(chosen) < max_units and following < len(found) and found[following].kind != "heading" \
            and found[following].lead in (None, best) and (score(following) > 0 or len(found[best].text) < 40):  # fmt: skip
        chosen.append(following)
    return _join([found[i].text for i in chosen])
