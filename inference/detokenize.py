"""Token ids to text, one token at a time, for streaming.

Byte-level BPE splits a Chinese character (or an emoji) over several tokens, and SentencePiece decides a
space by the token before: decoding each token alone would print broken characters. `IncrementalDetokenizer`
decodes a short sliding span and releases only text that is final (never ending in U+FFFD, the mark of an
incomplete UTF-8 sequence). Special tokens are dropped, except those the caller keeps (DeepSeek-R1's
`<think>` tags, which the reasoning filter needs to see).
"""

from __future__ import annotations

from collections.abc import Iterable


class IncrementalDetokenizer:
    def __init__(self, tokenizer, keep_special: Iterable[int] = ()):
        self.tokenizer = tokenizer
        self.hidden = frozenset(tokenizer.all_special_ids) - frozenset(keep_special)
        self.ids: list[int] = []
        self._prefix = 0  # start of the span decoded for context
        self._read = 0  # end of the text already released

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def feed(self, token_id: int) -> str:
        if token_id in self.hidden:
            return ""
        self.ids.append(token_id)
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """Whatever is still held back at the end (an incomplete character becomes U+FFFD)."""
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        self._prefix = self._read = len(self.ids)
        return after[len(before) :]
