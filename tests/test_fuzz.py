"""Hypothesis fuzzing of the pure text machinery whatever a hostile file or customer sends: the analyser, the FTS5
query builder (over a real SQLite FTS5 index), the chunker (no chunk above its token or character limit), and
the input check. No exceptions; the invariants hold."""

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.answering.answerer import checked_question
from app.errors import InputError
from ingest.chunking import MAX_CHARS_PER_TOKEN, approximate_token_count, chunk_block
from ingest.documents import Block
from rag.analysis import Analyzer
from rag.sqlite_store import build_fts_query

ANALYZER = Analyzer()
# Text as hostile input looks: every Unicode category, CJK, FTS5 syntax, Markdown, long runs, odd whitespace.
WORDS = st.sampled_from(["退款", "政策", "refund", "NEAR(", '"', "*", "^", "title:", "AND", "OR", "NOT", "(", ")",
                         "\u3000", "\x00", "\u200b", "🙂", "ﬁ", "Ａｂｃ", "-", "_", "’", "\n\n", "a" * 150, "字" * 40])  # fmt: skip
HOSTILE = st.one_of(st.text(max_size=400), st.lists(st.one_of(WORDS, st.text(max_size=20)), max_size=60).map(" ".join))


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_the_analyser_gives_terms_without_spaces_or_syntax(text):
    import string

    for terms in (ANALYZER.terms(text), ANALYZER.query_terms(text)):
        assert all(t and not any(c.isspace() or c in string.punctuation for c in t) for t in terms)
    assert ANALYZER.analyzed_text(text) == " ".join(ANALYZER.terms(text))


ROWS = ["退款政策", "refund policy", "NEAR and OR"]


@pytest.fixture(scope="module")
def fts():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(terms)")
    db.executemany("INSERT INTO t(terms) VALUES (?)", [(ANALYZER.analyzed_text(x),) for x in ROWS])
    return db


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(HOSTILE, st.integers(0, len(ROWS) - 1))
def test_the_fts_query_built_from_any_text_is_valid_fts5(fts, text, row):
    """Whatever else the text holds, the query is valid FTS5 (no syntax error) and a word of a row finds it."""
    word = ANALYZER.terms(ROWS[row])[0]
    query = build_fts_query([*ANALYZER.query_terms(text), word])
    found = {rowid for (rowid,) in fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,)).fetchall()}
    assert row + 1 in found and found <= {1, 2, 3}


@settings(max_examples=200, deadline=None)
@given(HOSTILE, st.integers(16, 120))
def test_no_chunk_is_above_its_limits(text, max_tokens):
    chunks = chunk_block(Block(text=text), approximate_token_count, max_tokens, max_tokens // 4)
    assert all(n <= max_tokens for n in approximate_token_count(chunks))
    assert all(len(c) <= max_tokens * MAX_CHARS_PER_TOKEN for c in chunks)
    assert "".join(text.split()).startswith("".join("".join(chunks[:1]).split())[:20]) or not chunks


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(WORDS, st.text(min_size=1, max_size=30)), min_size=1, max_size=200).map("".join))
def test_no_chunk_is_above_the_real_tokenizers_limit(embedder, text):
    chunks = chunk_block(Block(text=text), embedder.count_tokens, 64, 16)
    assert all(n <= 64 for n in embedder.count_tokens(chunks))


def test_a_file_that_is_one_long_word_becomes_bounded_chunks(embedder):
    chunks = chunk_block(Block(text="x" * 300_000), embedder.count_tokens, 254, 32)
    assert len(chunks) > 100 and max(len(c) for c in chunks) <= 254 * MAX_CHARS_PER_TOKEN
    assert max(embedder.count_tokens(chunks[:20])) <= 254


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300).map(lambda t: t + "".join(chr(c) for c in (0xDCFF, 0x7, 0x202E))))
def test_the_input_check_cleans_or_refuses_never_crashes(text):
    try:
        cleaned = checked_question(text)
    except InputError:
        return
    assert cleaned and cleaned == cleaned.strip()
    assert not any(0xD800 <= ord(c) <= 0xDFFF or c in "\x07\u202e" for c in cleaned)
