"""FAQ paraphrase matching learned from data: does a customer's question ask what an FAQ entry's question asks?

A small logistic model scores a (customer question, FAQ question) pair from features a reader can check:

- meaning: the multilingual model's cosine of the two questions, raw and centred (both vectors less the mean
  question vector the model file ships: E5's cosines are compressed, every Chinese question scores ~0.95
  with every other, and the shared direction is what makes them so);
- words: idf-weighted coverage of each side's terms by the other, their F1, and a BM25 score normalised by
  the most the question's terms could give;
- characters: Jaccard overlap of character 1-, 2- and 3-grams (typos and unsegmented product names:
  "借贝" for "借呗" still shares a character), longest common subsequence and edit distance;
- what differs: the largest idf of a term only one side has, numbers and Latin-script names (model codes,
  "iPhone 15") that one side has and the other lacks, negation and the kind of question asked (why / how /
  can / when / how much), and the length difference.

Centring needs each vector's cosine with the mean direction, which any store gives through `similarities`
(the mean as the query vector): see `centred_cosine`. Numbers and model codes never appear in the training
data (AFQMC masks them as ***), so the model could not learn them; a pair whose numbers or Latin names differ
is never confident instead (`FaqMatcher.confident`), and its score is left as learned.

The weights, the mean vector, the feature names and the confident threshold (chosen by k-fold
cross-validation for precision >= 0.8 of the top-1 decision) are one JSON file, `rag/resources/faq_matcher.json`,
written by `bench/faq_matcher.py --write`. Inference is pure Python and numpy: terms come in already analysed
(`rag.analysis.Analyzer.query_terms`), idf weights from the caller's store. This module knows nothing about
stores, embedders, settings or answers.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ingest.cjk import CJK_CLASS

FORMAT = "kefu-faq-matcher/1"
RESOURCE = "faq_matcher.json"

# Question kinds a customer-service question can be of; a pair asking different kinds is less likely the same.
QUESTION_KINDS = {
    "why": ("为什么", "为何", "为啥", "怎么会", "什么原因", "why"),
    "how": ("怎么", "怎样", "如何", "怎么样", "how"),
    "can": ("能不能", "可不可以", "可以", "能否", "能吗", "是否", "can", "could"),
    "when": ("什么时候", "多久", "几天", "何时", "when"),
    "amount": ("多少", "几个", "额度多", "how much", "how many"),
    "where": ("哪里", "在哪", "哪儿", "where"),
}
NEGATIONS = ("不", "没", "无", "未", "别", "not", "n't", "no ", "never")
_KEEP_RE = re.compile(rf"[{CJK_CLASS}]|[^\W_]")
_NUMBER_RE = re.compile(r"(?<![a-z\d])\d+(?:[.,]\d+)*(?![a-z\d])")  # standalone: "x200" is a code
_LATIN_RE = re.compile(r"[a-z][a-z0-9\-]*\d[a-z0-9\-]*|\d+[a-z]+[a-z0-9]*")  # model codes: x200, 15pro, a-7


def normalize(text: str) -> str:
    """NFKC, case-folded, letters, digits and Chinese characters only (what the character features compare)."""
    return "".join(_KEEP_RE.findall(unicodedata.normalize("NFKC", text).casefold()))


def char_ngrams(text: str, n: int) -> set[str]:
    return {text[i : i + n] for i in range(len(text) - n + 1)} if len(text) >= n else ({text} if text else set())


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def lcs_length(a: str, b: str) -> int:
    """Longest common subsequence of two short strings (one row of dynamic programming)."""
    if not a or not b:
        return 0
    row = [0] * (len(b) + 1)
    for ca in a:
        previous = 0
        for j, cb in enumerate(b, start=1):
            current = row[j]
            row[j] = previous + 1 if ca == cb else max(row[j], row[j - 1])
            previous = current
    return row[-1]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (one row of dynamic programming)."""
    if not a or not b:
        return len(a) + len(b)
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
            previous = current
    return row[-1]


def numbers_and_codes(text: str) -> frozenset[str]:
    """Numbers and Latin-script model codes in the text ("iPhone 15" gives "15", "X200" gives "x200")."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return frozenset(_NUMBER_RE.findall(folded)) | frozenset(_LATIN_RE.findall(folded))


def identical(a: str, b: str) -> bool:
    """The same question once punctuation, spaces, case and width are set aside."""
    na = normalize(a)
    return bool(na) and na == normalize(b)


def question_kinds(text: str) -> frozenset[str]:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return frozenset(kind for kind, cues in QUESTION_KINDS.items() if any(c in folded for c in cues))


def negated(text: str) -> bool:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return any(n in folded for n in NEGATIONS)


def centred_cosine(cosine: float, query_to_mean: float, candidate_to_mean: float, mean_norm: float) -> float:
    """The cosine of q - m and d - m for unit vectors q, d, from q.d (`cosine`), the cosines of q and d with m
    (`*_to_mean`: what a store's `similarities` returns for the mean as query) and |m|."""
    qm, dm = query_to_mean * mean_norm, candidate_to_mean * mean_norm
    mm = mean_norm * mean_norm
    nq, nd = 1.0 - 2.0 * qm + mm, 1.0 - 2.0 * dm + mm
    if nq <= 1e-12 or nd <= 1e-12:
        return cosine
    return (cosine - qm - dm + mm) / math.sqrt(nq * nd)


@dataclass(frozen=True)
class Side:
    """One question as the matcher sees it: its text, its analysed terms (distinct, in order) and the cosine of
    its multilingual vector with the model's mean direction (None: not known, the centred cosine is the raw one)."""

    text: str
    terms: tuple[str, ...]
    to_mean: float | None = None


FEATURES = (
    "cosine", "centred_cosine",
    "coverage_question", "coverage_candidate", "overlap_f1", "bm25",
    "char1_jaccard", "char2_jaccard", "char3_jaccard", "lcs_ratio", "edit_ratio",
    "unmatched_idf_question", "unmatched_idf_candidate", "numbers_differ",
    "negation_differs", "kind_differs", "kind_shared", "length_difference",
)  # fmt: skip


def features(
    question: Side, candidate: Side, cosine: float, idf: Mapping[str, float], mean_norm: float = 0.0
) -> list[float]:
    """The pair's feature values in `FEATURES` order. `idf` gives each term's weight (terms it lacks weigh
    the largest weight it has, as a term no document holds); `mean_norm` is |m| of the model's mean vector."""
    default = max(idf.values(), default=1.0)
    top = max(default, 1e-9)

    def w(t: str) -> float:
        return idf.get(t, default)

    q_terms, c_terms = set(question.terms), set(candidate.terms)
    # sums in sorted order: the same floats in every process (set order follows the hash seed)
    wq, wc = sum(map(w, sorted(q_terms))), sum(map(w, sorted(c_terms)))
    common = sum(map(w, sorted(q_terms & c_terms)))
    cov_q = common / wq if wq else 0.0
    cov_c = common / wc if wc else 0.0
    f1 = 2 * common / (wq + wc) if wq + wc else 0.0
    # BM25 (k1 0.9, b 0.4, the candidate's length against the question's) over the most the terms could give
    k1, b = 0.9, 0.4
    length = len(candidate.terms) / max(1.0, (len(candidate.terms) + len(question.terms)) / 2)
    tf = 1.0  # distinct terms: each matched term counts once
    bm25 = sum(w(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length)) for t in sorted(q_terms & c_terms))
    bm25 = bm25 / wq if wq else 0.0
    a, c = normalize(question.text), normalize(candidate.text)
    longest = max(len(a), len(c), 1)
    unmatched_q = max((w(t) for t in q_terms - c_terms), default=0.0) / top
    unmatched_c = max((w(t) for t in c_terms - q_terms), default=0.0) / top
    kinds_q, kinds_c = question_kinds(question.text), question_kinds(candidate.text)
    centred = (
        centred_cosine(cosine, question.to_mean, candidate.to_mean, mean_norm)
        if question.to_mean is not None and candidate.to_mean is not None and mean_norm > 0
        else cosine
    )
    return [
        cosine,
        centred,
        cov_q,
        cov_c,
        f1,
        bm25,
        jaccard(char_ngrams(a, 1), char_ngrams(c, 1)),
        jaccard(char_ngrams(a, 2), char_ngrams(c, 2)),
        jaccard(char_ngrams(a, 3), char_ngrams(c, 3)),
        lcs_length(a, c) / longest,
        1.0 - edit_distance(a, c) / longest,
        unmatched_q,
        unmatched_c,
        float(numbers_and_codes(question.text) != numbers_and_codes(candidate.text)),
        float(negated(question.text) != negated(candidate.text)),
        float(bool(kinds_q) and bool(kinds_c) and not (kinds_q & kinds_c)),
        float(bool(kinds_q & kinds_c)),
        abs(len(a) - len(c)) / longest,
    ]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True)
class Match:
    """The matcher's verdict on a question's candidates: the best one (`index` into the candidates), its score
    (a logit), how sure the matcher is that it is the question's entry (`confidence`, a probability) and
    whether that is sure enough to answer with it (`confident`)."""

    index: int
    score: float
    margin: float  # its score less the next candidate's (capped)
    confidence: float
    confident: bool
    scores: tuple[float, ...]  # every candidate's score, in the candidates' order


@dataclass(frozen=True)
class FaqMatcher:
    """A trained matcher: `weights` over `FEATURES` (standardisation folded in) and `bias` score a pair; the
    calibrator (`calibration`: intercept, weight of the best score, weight of its margin over the next) turns
    the best candidate's score and its margin over the next into the probability that it is the right entry;
    `threshold` on that probability, with the score at least `score_floor`, makes the decision confident. `mean` is the mean question vector of the multilingual model
    (see `centred_cosine`)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    calibration: tuple[float, float, float]
    margin_cap: float
    threshold: float
    score_floor: float
    mean: tuple[float, ...] = ()
    model: str = ""  # the multilingual model whose cosines it was trained on
    about: dict | None = None  # how it was trained and what it measured (for people; not read here)

    def __post_init__(self) -> None:
        if tuple(self.features) != FEATURES:
            raise ValueError(
                f"the FAQ matcher's model file lists features {list(self.features)}, this code computes "
                f"{list(FEATURES)}: retrain it with `python bench/faq_matcher.py --write`"
            )
        if len(self.weights) != len(self.features):
            raise ValueError(f"the FAQ matcher has {len(self.weights)} weights for {len(self.features)} features")

    @property
    def mean_norm(self) -> float:
        return float(np.linalg.norm(np.asarray(self.mean, dtype=np.float64))) if self.mean else 0.0

    @property
    def mean_direction(self) -> np.ndarray | None:
        """The unit mean vector: a store's `similarities(mean_direction, ids)` gives each stored vector's
        `to_mean`; `question_vector @ mean_direction` the question's."""
        if not self.mean:
            return None
        m = np.asarray(self.mean, dtype=np.float32)
        return m / np.linalg.norm(m)

    def score(self, question: Side, candidate: Side, cosine: float, idf: Mapping[str, float]) -> float:
        """One pair's score (a logit: higher is more likely the same question)."""
        x = features(question, candidate, cosine, idf, self.mean_norm)
        return float(self.bias + sum(w * v for w, v in zip(self.weights, x)))

    def match(
        self, question: Side, candidates: Sequence[Side], cosines: Sequence[float], idf: Mapping[str, float]
    ) -> Match | None:
        """The best of `candidates` for `question` (`cosines[i]` is the multilingual cosine of the question and
        candidate i), how sure the matcher is, and whether that is confident. None without candidates.

        The margin over the next candidate counts (on AFQMC the best score alone is a poor guide: a question
        close to several near-duplicate entries scores high on all of them), so give every FAQ candidate the
        search found, not only the best. A candidate whose numbers or model codes differ from the question's
        is never confident; one whose question is the customer's, letter for letter once punctuation, case and
        width are set aside, is the pick and sure (confidence 1: AFQMC holds no such pair, so the calibrator never saw one,
        and its margin over a close runner-up can be small)."""
        if not candidates:
            return None
        scores = [self.score(question, c, cos, idf) for c, cos in zip(candidates, cosines)]
        same = [i for i, c in enumerate(candidates) if identical(question.text, c.text)]
        best = same[0] if same else max(range(len(scores)), key=lambda i: scores[i])
        others = [s for i, s in enumerate(scores) if i != best]
        margin = min(scores[best] - max(others), self.margin_cap) if others else self.margin_cap
        a0, a1, a2 = self.calibration
        confidence = _sigmoid(a0 + a1 * scores[best] + a2 * margin)
        if same:
            confidence = 1.0
        same_numbers = numbers_and_codes(question.text) == numbers_and_codes(candidates[best].text)
        confident = confidence >= self.threshold and scores[best] >= self.score_floor and same_numbers
        return Match(best, scores[best], margin, confidence, confident, tuple(scores))

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "model": self.model,
            "features": list(self.features),
            "weights": [round(w, 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "calibration": [round(a, 6) for a in self.calibration],
            "margin_cap": round(self.margin_cap, 6),
            "threshold": round(self.threshold, 6),
            "score_floor": round(self.score_floor, 6),
            "mean": [round(v, 6) for v in self.mean],
            "about": self.about or {},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FaqMatcher:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a Kefu FAQ matcher file (format {data.get('format')!r}, expected {FORMAT!r})")
        return cls(
            features=tuple(data["features"]),
            weights=tuple(float(w) for w in data["weights"]),
            bias=float(data["bias"]),
            calibration=tuple(float(a) for a in data["calibration"]),  # type: ignore[arg-type]
            margin_cap=float(data["margin_cap"]),
            threshold=float(data["threshold"]),
            score_floor=float(data["score_floor"]),
            mean=tuple(float(v) for v in data.get("mean", ())),
            model=str(data.get("model", "")),
            about=dict(data.get("about") or {}),
        )

    @classmethod
    def load(cls, path: Path | str | None = None) -> FaqMatcher:
        """The matcher in `path`, or the one shipped with Kefu (`rag/resources/faq_matcher.json`)."""
        if path is None:
            return _shipped()
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def _shipped() -> FaqMatcher:
    text = resources.files("rag").joinpath("resources", RESOURCE).read_text(encoding="utf-8")
    return FaqMatcher.from_dict(json.loads(text))
