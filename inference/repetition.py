"""A guard against degenerate loops: small models, greedy decoding especially, can repeat one line until the
token limit ("36. Tap the earbuds. 37. Tap the earbuds. …"). The guard watches the visible text as it is
generated and says stop once the same sentence or line (compared without digits, punctuation and case)
has been written `limit` times, so a loop costs a few lines instead of the whole token budget.

Pure text in, a flag out; knows nothing about tokens or models.
"""

from __future__ import annotations

import re

_BOUNDARY_RE = re.compile(r"(?<=[。！？；])\s*|(?<=[.!?;])\s+|\n+")
_NOISE_RE = re.compile(r"[\d\W_]+", re.UNICODE)
MIN_UNIT_CHARS = 8  # shorter units ("Yes.", "- ") repeat legitimately


class LoopGuard:
    def __init__(self, limit: int = 3):
        self.limit = limit
        self._pending = ""
        self._counts: dict[str, int] = {}
        self.tripped = False

    def feed(self, piece: str) -> bool:
        """Add generated text; True once some unit has been repeated `limit` times (then stop generating)."""
        if self.tripped or not piece:
            return self.tripped
        self._pending += piece
        units = _BOUNDARY_RE.split(self._pending)
        self._pending = units.pop()  # the last unit may still be growing
        for unit in units:
            key = _NOISE_RE.sub(" ", unit).strip().casefold()
            if len(key) >= MIN_UNIT_CHARS:
                self._counts[key] = self._counts.get(key, 0) + 1
                if self._counts[key] >= self.limit:
                    self.tripped = True
        return self.tripped
