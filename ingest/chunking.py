"""Chunking: a document's blocks into token-bounded, overlapping chunks. Pure functions.

Lengths are measured by a `count_tokens` function the caller supplies (the embedding model's tokenizer in
production), so a chunk never exceeds what the embedder reads. Windows break at paragraph ends where they
can, else at sentence ends (English `.!?;` and Chinese `。！？；`), else between words, never inside one;
consecutive windows share about `overlap` tokens. An FAQ row is always exactly one chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ingest.cjk import CJK_CHAR_RE, CJK_CLASS
from ingest.documents import KIND_FAQ, Block, Chunk, Document

CountTokens = Callable[[Sequence[str]], list[int]]

# A sentence ends at Chinese terminal punctuation (closing quotes kept with it), at `!?;` before whitespace,
# or at `.` before whitespace and a word that does not start in lower case ("P.O. boxes" stays whole).
# Paragraphs end at blank lines.
_SENTENCE_END_RE = re.compile(r"(?<=[。！？；])[”’」』\"')）]*|(?<=[.!?;])[\"')]*(?=\s+[^a-z\s])|(?<=[!?;])(?=\s)")
_PARAGRAPH_RE = re.compile(r"\n\s*\n")
_WORD_RE = re.compile(r"\S+\s*|\s+")
# No unit is longer than this many characters: BERT-style tokenizers turn a longer "word" into one unknown
# token, so a token count alone would let a 3 MB run of letters through as one chunk.
MAX_WORD_CHARS = 100
MAX_CHARS_PER_TOKEN = 8  # a chunk holds at most max_tokens * 8 characters (real text: about 4 per token, or 1.5 in Chinese)
_LONG_WORD_RE = re.compile(r"\S{%d}" % (MAX_WORD_CHARS + 1))
_CJK_SPLIT_RE = re.compile(f"[{CJK_CLASS}]|[^{CJK_CLASS}]+")


def approximate_token_count(texts: Sequence[str]) -> list[int]:
    """A tokenizer-free length: one per Latin word, one per CJK character (used when no tokenizer is given)."""
    counts = []
    for text in texts:
        cjk = len(CJK_CHAR_RE.findall(text))
        words = len(CJK_CHAR_RE.sub(" ", text).split())
        counts.append(cjk + words)
    return counts


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, each keeping its punctuation and trailing whitespace; "".join restores it."""
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(text):
        end = match.end()
        # Swallow whitespace after the terminator so the next sentence starts on a word.
        while end < len(text) and text[end].isspace():
            end += 1
        if end > start:
            pieces.append(text[start:end])
            start = end
    if start < len(text):
        pieces.append(text[start:])
    return [p for p in pieces if p]


def _split_words(text: str) -> list[str]:
    """Words with their trailing whitespace; a run of CJK characters splits per character (no spaces there)."""
    units: list[str] = []
    for word in _WORD_RE.findall(text):
        if CJK_CHAR_RE.search(word) and len(word.strip()) > 1:
            units.extend(_CJK_SPLIT_RE.findall(word))
        else:
            units.append(word)
    return units


def _fitting(words: list[str], count_tokens: CountTokens, max_tokens: int) -> list[str]:
    """Words, in order, with any longer than MAX_WORD_CHARS characters or `max_tokens` tokens cut into pieces
    that fit (a file that is one 3 MB "word" must still become chunks within the limits)."""
    pieces: list[str] = []
    for word in words:
        pieces.extend(word[i : i + MAX_WORD_CHARS] for i in range(0, len(word), MAX_WORD_CHARS))
    out: list[str] = []
    for piece, count in zip(pieces, count_tokens(pieces)):
        out.extend(_halved(piece, count, count_tokens, max_tokens))
    return out


def _halved(piece: str, count: int, count_tokens: CountTokens, max_tokens: int) -> list[str]:
    """A piece that a tokenizer spends too many tokens on (emoji, rare scripts), halved until each part fits."""
    if count <= max_tokens or len(piece) == 1:
        return [piece]
    left, right = piece[: len(piece) // 2], piece[len(piece) // 2 :]
    left_count, right_count = count_tokens([left, right])
    return _halved(left, left_count, count_tokens, max_tokens) + _halved(right, right_count, count_tokens, max_tokens)


def _units(text: str, count_tokens: CountTokens, max_tokens: int) -> tuple[list[str], list[int], list[bool]]:
    """Break text into units no longer than max_tokens: sentences, or words where a sentence is too long.

    Returns the units, their token counts, and for each unit whether a paragraph ends after it.
    """
    units: list[str] = []
    para_end: list[bool] = []
    for paragraph in _PARAGRAPH_RE.split(text):
        if not paragraph.strip():
            continue
        sentences = split_sentences(paragraph.strip() + "\n\n")
        units.extend(sentences)
        para_end.extend([False] * (len(sentences) - 1) + [True])
    # A unit with a very long "word", or very long altogether, goes to words at once: tokenizers take time
    # superlinear in a word's length (300,000 letters: 20 s), so it is never counted whole.
    whole = [len(u) <= max_tokens * MAX_CHARS_PER_TOKEN and not _LONG_WORD_RE.search(u) for u in units]
    known = iter(count_tokens([u for u, w in zip(units, whole) if w]))
    counts = [next(known) if w else max_tokens + 1 for w in whole]
    out_units: list[str] = []
    out_counts: list[int] = []
    out_para: list[bool] = []
    for unit, count, is_end in zip(units, counts, para_end):
        if count <= max_tokens:
            out_units.append(unit)
            out_counts.append(count)
            out_para.append(is_end)
            continue
        words = _fitting(_split_words(unit), count_tokens, max_tokens)
        word_counts = count_tokens(words)
        for i, (word, wc) in enumerate(zip(words, word_counts)):
            out_units.append(word)
            out_counts.append(wc)
            out_para.append(is_end and i == len(words) - 1)
    return out_units, out_counts, out_para


def window(
    counts: Sequence[int], para_end: Sequence[bool], max_tokens: int, overlap: int, lengths: Sequence[int] | None = None
) -> list[tuple[int, int]]:
    """Greedy windows [start, end) over units: each at most max_tokens (and, given the units' lengths, at most
    max_tokens * MAX_CHARS_PER_TOKEN characters), ending at a paragraph end when one falls in the window's second
    half, each next window starting so that it re-reads about `overlap` tokens."""
    spans: list[tuple[int, int]] = []
    n = len(counts)
    lengths = lengths if lengths is not None else [0] * n
    max_chars = max_tokens * MAX_CHARS_PER_TOKEN
    start = 0
    while start < n:
        total = chars = 0
        end = start
        while end < n and total + counts[end] <= max_tokens and chars + lengths[end] <= max_chars:
            total += counts[end]
            chars += lengths[end]
            end += 1
        end = max(end, start + 1)
        if end < n:
            # Prefer a paragraph boundary if one leaves the window at least half full.
            running = sum(counts[start:end])
            for cut in range(end, start + 1, -1):
                if para_end[cut - 1] and running >= max_tokens // 2:
                    end = cut
                    break
                running -= counts[cut - 1]
        spans.append((start, end))
        if end >= n:
            break
        next_start = end
        back = back_chars = 0
        while (
            next_start - 1 > start
            and back + counts[next_start - 1] <= overlap
            and back_chars + lengths[next_start - 1] <= max_chars // 4
        ):
            back += counts[next_start - 1]
            back_chars += lengths[next_start - 1]
            next_start -= 1
        start = next_start
    return spans


def chunk_block(block: Block, count_tokens: CountTokens, max_tokens: int, overlap: int) -> list[str]:
    units, counts, para_end = _units(block.text, count_tokens, max_tokens)
    texts = []
    for start, end in window(counts, para_end, max_tokens, overlap, [len(u) for u in units]):
        text = "".join(units[start:end]).strip()
        if text:
            texts.append(text)
    return texts


def chunk_document(
    doc: Document,
    count_tokens: CountTokens = approximate_token_count,
    max_tokens: int = 512,
    overlap: int = 64,
) -> list[Chunk]:
    """Chunk every block of a document. The title and section path are prepended when embedding, so their
    length is taken off each window's budget (up to a quarter of it)."""
    if max_tokens < 16:
        raise ValueError(f"max_tokens must be at least 16, got {max_tokens}")
    overlap = max(0, min(overlap, max_tokens // 2))
    chunks: list[Chunk] = []
    if doc.kind == KIND_FAQ:
        for block in doc.blocks:
            question = block.metadata.get("question", block.section)
            answer = block.metadata.get("answer", block.text)
            meta = {**block.metadata, "question": question, "answer": answer}
            chunks.append(
                Chunk(ord=len(chunks), text=f"{question}\n{answer}", match_text=question, section=question, metadata=meta)
            )
        return chunks
    prefixes = [context_prefix(doc.title, block.section) for block in doc.blocks]
    prefix_counts = count_tokens(prefixes)
    for block, prefix_count in zip(doc.blocks, prefix_counts):
        budget = max_tokens - min(prefix_count, max_tokens // 4)
        for text in chunk_block(block, count_tokens, budget, overlap):
            chunks.append(
                Chunk(
                    ord=len(chunks),
                    text=text,
                    match_text=text,
                    section=block.section,
                    page=block.page,
                    metadata=dict(block.metadata),
                )
            )
    return chunks


def context_prefix(title: str, section: str) -> str:
    """The line put before a chunk's text when it is embedded: its title and section path."""
    if section and section != title and not section.startswith(title + " > "):
        return f"{title} > {section}" if title else section
    return section or title
