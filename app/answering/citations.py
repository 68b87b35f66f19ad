"""Checking a generated answer's citations: every [n] must point at a passage that was actually given.

Pure. `check_citations` keeps valid citations, removes those pointing at passages that were not in the prompt
(a model inventing a [7] out of three passages), and reports both, so the answer shown and stored only cites
real sources. Accepts [1], [1, 2], [1][2] and full-width 【1】.

`attribute` repairs the opposite failure: an answer that cites nothing although it plainly restates a passage
(small models often forget the marker, or copy the passage out instead). It names the passage that holds most of
the answer's words, and only when that passage holds most of them, so an answer that says something the passages
do not is never given a citation it has not earned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ingest.cjk import CJK_CHAR_RE, CJK_CLASS

_GROUP_RE = re.compile(r"(\s*)[\[【](\s*\d+(?:\s*[,，、]\s*\d+)*\s*)[\]】]")
_NUMBER_RE = re.compile(r"\d+")
_WORD_RE = re.compile(f"[{CJK_CLASS}]+|[^\\W\\d_]{{3,}}|\\d+")  # CJK runs, words of 3+ letters, numbers
ATTRIBUTION_SHARE = 0.6  # of the answer's words that one passage must hold to be named its source
ATTRIBUTION_WORDS = 4  # and at least this many of them


@dataclass
class CitationCheck:
    text: str  # the answer with invalid citations removed
    cited: list[int] = field(default_factory=list)  # valid passage numbers, in order of first citation
    invalid: list[int] = field(default_factory=list)  # numbers that pointed at no passage given

    @property
    def ok(self) -> bool:
        return bool(self.cited) and not self.invalid


def _rewrite(text: str, passages: int, cited: list[int], invalid: list[int]) -> str:
    """`text` with each citation group cut to its valid numbers (dropped when none is); records them."""

    def fix(match: re.Match) -> str:
        numbers = [int(n) for n in _NUMBER_RE.findall(match.group(2))]
        good = [n for n in numbers if 1 <= n <= passages]
        for n in numbers:
            target = cited if n in good else invalid
            if n not in target:
                target.append(n)
        return f"{match.group(1)}[{', '.join(str(n) for n in dict.fromkeys(good))}]" if good else ""

    return _GROUP_RE.sub(fix, text)


def check_citations(text: str, passages: int) -> CitationCheck:
    """Validate the citations of `text` against `passages` numbered 1…passages."""
    cited: list[int] = []
    invalid: list[int] = []
    cleaned = _rewrite(text, passages, cited, invalid)
    cleaned = re.sub(r"[ \t]+([.,;:!?。，；：！？])", r"\1", cleaned).strip()
    return CitationCheck(cleaned, cited, invalid)

class CitationStream:
    """`check_citations` for a stream: text is released as it comes, except from an opening bracket until it
    is known whether it starts a citation, so a citation of a passage not given is never shown either."""

    MAX_HELD = 24  # a bracket still open after this many characters is not a citation

    def __init__(self, passages: int):
        self.passages = passages
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        cut = max(text.rfind("["), text.rfind("【"))
        if cut >= 0 and not any(c in text[cut:] for c in "]】") and len(text) - cut <= self.MAX_HELD:
            text, self._held = text[:cut], text[cut:]
        else:
            self._held = ""
        return self._clean(text)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._clean(text)

    def _clean(self, text: str) -> str:
        return _rewrite(text, self.passages, [], [])


def _words(text: str) -> set[str]:
    """The answer's and passages' words as compared: case folded; a CJK run as its character pairs."""
    words: set[str] = set()
    for token in _WORD_RE.findall(text.casefold()):
        if CJK_CHAR_RE.match(token):
            words.update(token[i : i + 2] for i in range(max(1, len(token) - 1)))
        else:
            words.add(token)
    return words


def attribute(text: str, passages: Sequence[str]) -> int | None:
    """The number (1-based) of the passage an uncited answer restates: the one holding the largest share of the
    answer's words, if that share is at least ATTRIBUTION_SHARE and ATTRIBUTION_WORDS words; else None."""
    said = _words(check_citations(text, 0).text)
    if len(said) < ATTRIBUTION_WORDS:
        return None
    best, best_shared = None, 0
    for number, passage in enumerate(passages, start=1):
        shared = len(said & _words(passage))
        if shared > best_shared:
            best, best_shared = number, shared
    if best is None or best_shared < ATTRIBUTION_WORDS or best_shared < ATTRIBUTION_SHARE * len(said):
        return None
    return best
