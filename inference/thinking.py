"""Hiding a reasoning model's thoughts: DeepSeek-R1 writes `<think>…</think>` before its answer, and a
customer must never see it, neither while it streams nor in what is stored.

`ThinkFilter` is a streaming filter over text pieces of any size: a tag split across pieces (`</th` + `ink>`)
is recognised, text that merely starts like a tag is released as soon as it cannot be one, reasoning that
never closes is dropped, and a stray closing tag is never shown. `strip_think` does the same to a finished text. Pure; knows nothing about tokens.
"""

from __future__ import annotations

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag` (it may yet become the tag)."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ThinkFilter:
    """Feed text pieces; get back only what lies outside <think>…</think>.

    `inside=True` starts within a reasoning block: DeepSeek-R1's chat template ends the prompt with `<think>\\n`,
    so the model's first words are reasoning without an opening tag of their own.
    """

    def __init__(self, inside: bool = False, open_tag: str = OPEN_TAG, close_tag: str = CLOSE_TAG):
        self.inside = inside
        self.open_tag = open_tag
        self.close_tag = close_tag
        self._buffer = ""
        self._at_start = True  # strip the whitespace that follows a closed block or opens the answer
        self.hidden_chars = 0  # how much reasoning was withheld (for measurements)

    def feed(self, piece: str) -> str:
        self._buffer += piece
        out: list[str] = []
        while self._buffer:
            if self.inside:
                end = self._buffer.find(self.close_tag)
                if end < 0:
                    keep = _partial_suffix(self._buffer, self.close_tag)
                    self.hidden_chars += len(self._buffer) - keep
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    break
                self.hidden_chars += end
                self._buffer = self._buffer[end + len(self.close_tag) :]
                self.inside = False
                self._at_start = True
            else:
                start, tag = self._next_tag()
                if start < 0:
                    keep = max(_partial_suffix(self._buffer, self.open_tag), _partial_suffix(self._buffer, self.close_tag))
                    out.append(self._visible(self._buffer[: len(self._buffer) - keep]))
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    break
                out.append(self._visible(self._buffer[:start]))
                self._buffer = self._buffer[start + len(tag) :]
                if tag == self.open_tag:
                    self.inside = True
                else:  # a closing tag with no opening one (the prompt opened it): markup, never text
                    self._at_start = True
        return "".join(out)

    def _next_tag(self) -> tuple[int, str]:
        """The first opening or closing tag in the buffer (position, tag), or (-1, "")."""
        found = [(i, t) for t in (self.open_tag, self.close_tag) if (i := self._buffer.find(t)) >= 0]
        return min(found) if found else (-1, "")

    def flush(self) -> str:
        """The end of the stream: a dangling tag prefix outside reasoning was text; unclosed reasoning is dropped."""
        rest, self._buffer = self._buffer, ""
        if self.inside:
            self.hidden_chars += len(rest)
            return ""
        return self._visible(rest)

    def _visible(self, text: str) -> str:
        if self._at_start:
            text = text.lstrip()
            if text:
                self._at_start = False
        return text


def strip_think(text: str, inside: bool = False) -> str:
    """A finished text without its reasoning blocks."""
    f = ThinkFilter(inside=inside)
    return (f.feed(text) + f.flush()).strip()
