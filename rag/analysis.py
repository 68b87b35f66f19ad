"""Text analysis: text in, index terms out. The one place that decides what a "word" is.

Both stores index the terms produced here and every query is analysed by the same code, so indexing and
querying can never disagree. Latin-script words are NFKC-normalised, case-folded, stop-worded and
Snowball-stemmed; runs of Chinese characters are segmented by jieba in search mode (with an optional user
dictionary for product names) or split into overlapping character bigrams. Every term consists of letters
and digits only, so a store can split the analysed text on whitespace and nothing a user types can reach a
store's query syntax.

This module knows nothing about stores, embeddings or models.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from ingest.cjk import CJK_CHAR_RE, CJK_CLASS, cjk_count

ChineseMode = Literal["jieba", "bigram"]
CHINESE_MODES: tuple[str, ...] = ("jieba", "bigram")
ANALYSIS_VERSION = 1  # bump when the term output changes, so stores know to re-index

# Runs of CJK ideographs, or runs of other letters/digits (underscore excluded).
_TERM_RE = re.compile(rf"[{CJK_CLASS}]+|[^\W_{CJK_CLASS}]+")
_LATIN_WORD_RE = re.compile(rf"[^\W\d_{CJK_CLASS}]+")


def _load_words(name: str) -> frozenset[str]:
    text = resources.files("rag").joinpath("resources", name).read_text(encoding="utf-8")
    return frozenset(w.strip() for w in text.split() if w.strip() and not w.startswith("#"))


ENGLISH_STOPWORDS = _load_words("stopwords_en.txt")
CHINESE_STOPWORDS = _load_words("stopwords_zh.txt")

_stemmers = threading.local()


@lru_cache(maxsize=500_000)
def _stem(word: str) -> str:
    # PyStemmer objects are not thread-safe (Streamlit serves sessions from threads): one per thread.
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        import Stemmer

        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return stemmer.stemWord(word)


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits to ASCII) and case folding."""
    return unicodedata.normalize("NFKC", text).casefold()


def detect_language(text: str) -> str:
    """'zh' when Chinese characters outnumber Latin-script words, 'en' when there are Latin words, else ''."""
    cjk = cjk_count(text)
    latin = len(_LATIN_WORD_RE.findall(text))
    if cjk == 0 and latin == 0:
        return ""
    return "zh" if cjk >= latin else "en"


def bigrams(run: str) -> list[str]:
    """Overlapping character bigrams of a CJK run; a single character stands alone."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


class Analyzer:
    """Turns text into terms. Immutable once built; safe to share between threads."""

    def __init__(
        self,
        chinese: ChineseMode = "jieba",
        user_dict: Path | None = None,
        stopwords: bool = True,
        precise_queries: bool = True,
    ):
        if chinese not in CHINESE_MODES:
            raise ValueError(f"unknown Chinese analysis {chinese!r}: choose one of {', '.join(CHINESE_MODES)}")
        self.chinese = chinese
        self.precise_queries = precise_queries
        self.user_dict = Path(user_dict) if user_dict else None
        self.stopwords = stopwords
        if self.user_dict is not None and not self.user_dict.is_file():
            raise FileNotFoundError(f"user dictionary {self.user_dict} does not exist")
        self._jieba_lock = threading.Lock()

    @cached_property
    def fingerprint(self) -> str:
        """Identifies everything that changes the terms; a store built with another fingerprint must re-index."""
        parts = [f"v{ANALYSIS_VERSION}", f"zh={self.chinese}", f"stop={int(self.stopwords)}"]
        # precise_queries changes only how queries are cut, not what is indexed: not part of the fingerprint.
        if self.user_dict is not None and self.chinese == "jieba":
            parts.append("dict=" + hashlib.sha1(self.user_dict.read_bytes()).hexdigest()[:12])
        return ";".join(parts)

    @cached_property
    def _jieba(self):
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        if self.user_dict is not None:
            tokenizer.load_userdict(str(self.user_dict))
        return tokenizer

    def _chinese_terms(self, run: str, query: bool) -> list[str]:
        if self.chinese == "bigram":
            return bigrams(run)
        with self._jieba_lock:
            tokenizer = self._jieba
        if query and self.precise_queries:
            words = tokenizer.cut(run, HMM=True)
        else:
            words = tokenizer.cut_for_search(run, HMM=True)
        words = [w for w in words if w.strip()]
        if self.stopwords:
            words = [w for w in words if w not in CHINESE_STOPWORDS]
        return words

    def _terms(self, text: str, query: bool) -> list[str]:
        out: list[str] = []
        for match in _TERM_RE.finditer(normalize(text)):
            run = match.group()
            if CJK_CHAR_RE.match(run):
                out.extend(self._chinese_terms(run, query))
            elif not (self.stopwords and run in ENGLISH_STOPWORDS):
                out.append(_stem(run))
        return out

    def terms(self, text: str) -> list[str]:
        """Every term of the text, in order, repeats kept (for indexing). Chinese in jieba's search mode:
        words and the shorter words inside them, so a query for a part of a compound still matches."""
        return self._terms(text, query=False)

    def query_terms(self, text: str) -> list[str]:
        """Distinct terms of a query, first occurrence order. Chinese queries are cut in jieba's precise
        mode (whole words only): the index holds both the words and their parts, so precise query words
        match, without the sub-words of one query word out-voting the rest of the question."""
        return list(dict.fromkeys(self._terms(text, query=True)))

    def analyzed_text(self, text: str) -> str:
        """Terms joined by spaces: what a store's whitespace tokenizer indexes."""
        return " ".join(self.terms(text))
