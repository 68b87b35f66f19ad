"""Checking a generated answer's citations: every [n] must point at a passage that was actually given.

Pure. `check_citations` keeps valid citations, removes those pointing at passages that were not in the prompt
(a model inventing a [7] out of three passages), and reports both, so the answer shown and stored only cites
real sources. Accepts [1], [1, 2], [1][2] and full-width 【1】.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_GROUP_RE = re.compile(r"(\s*)[\[【](\s*\d+(?:\s*[,，、]\s*\d+)*\s*)[\]】]")
_NUMBER_RE = re.compile(r"\d+")


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
