"""Intent: what a customer's message wants, among the few a support desk acts on.

- `question`: anything to answer from the knowledge base (the default).
- `greeting`, `thanks`, `goodbye`: a short reply, no search.
- `human`: asks for a person; `complaint`: anger or a complaint. Both hand the conversation over.
- `chitchat`: small talk or out of scope ("tell me a joke"); a reply that says what Kefu can help with.

Rules decide first (English and Chinese patterns: asking for a person, a complaint, small talk about the
assistant itself — "are you a robot?", "讲个笑话" —, then a greeting, thanks or goodbye only when the message
holds nothing else, so "hi, where is my parcel?" stays a question). Messages no rule claims are compared with the
labelled examples of `data/intents.csv` by embedding: the nearest example's intent wins when it is close
(`EXAMPLE_MIN_SIMILARITY`) and clearly closer than the nearest `question` example. Text the embedding model
cannot read (Chinese for an English-only model) is judged by the rules alone. Pure apart from the embedding
function passed in.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ingest.cjk import cjk_count

QUESTION = "question"
GREETING = "greeting"
THANKS = "thanks"
GOODBYE = "goodbye"
HUMAN = "human"
COMPLAINT = "complaint"
CHITCHAT = "chitchat"
INTENTS = (QUESTION, GREETING, THANKS, GOODBYE, HUMAN, COMPLAINT, CHITCHAT)
SMALL_TALK = (GREETING, THANKS, GOODBYE, CHITCHAT)
HANDOFF_INTENTS = (HUMAN, COMPLAINT)

EXAMPLE_MIN_SIMILARITY = 0.78
EXAMPLE_MARGIN = 0.04
EXAMPLE_MAX_WORDS = 16  # longer messages carry a question even when they open with small talk

EXAMPLES_FILE = Path(__file__).resolve().parents[2] / "data" / "intents.csv"

# Asking for a person. "客服" alone is not enough: "客服电话是多少" asks for a number.
_HUMAN_RE = re.compile(
    r"""
    \b(talk|speak|chat|connect|transfer|put)\b[^.?!]{0,30}\b(human|person|agent|representative|operator|someone|somebody|staff)\b
    | ^\s*(a\s+)?(human|agent|representative|operator|real\ person|person)(\s+please)?\s*[.!?]*\s*$
    | \b(real|live|actual)\s+(person|human|agent)\b
    | \b(get|give|find)\s+me\s+(a|an|some)?\s*(human|person|agent|representative|operator)\b
    | \b(a\ person|a\ human|someone|somebody|anyone|anybody)\b[^.?!]{0,15}\b(talk|speak|chat)\s+(to|with)\b
    | \b(don'?t|do\ not)\s+want\s+(to\s+(talk|speak|chat)\s+(to|with)\s+)?(a|the)?\s*(bot|robot|machine)\b
    | 转人工 | 人工客服 | 人工服务 | 找人工 | 要人工 | 真人 | 人工\s*[!！。]?\s*$ | (找|叫)(个|一个)?(你们)?的?(人工|客服|经理|主管|负责人)
    """,
    re.IGNORECASE | re.VERBOSE,
)
_COMPLAINT_RE = re.compile(
    r"""
    \b(i\ (want|wish|would\ like)\ to\ (complain|make\ a\ complaint|file\ a\ complaint))\b
    | \b(terrible|awful|horrible|ridiculous|unacceptable|disgusting|outrageous|pathetic|appalling|incompetent|useless)\b
    | \b(worst)\s+(service|company|shop|store|support|experience|product)\b
    | \b(scam|scammers|rip[- ]?off|fed\ up|sick\ of|furious|angry|livid|disgrace|disappointed|what\ a\ joke)\b
    | \bnever\ (buy|order|shop)(ing)?\ (from|with|here|again)\b | \bnobody\ (helps|answers|replies|responds|cares)\b
    | 投诉 | 太差 | 差劲 | 垃圾 | 气死 | 骗子 | 骗人 | 坑人 | 无语 | 破(东西|玩意|服务) | 忍无可忍 | 太过分 | 差评 | 举报 | 恶心
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Small talk about the assistant itself or entertainment: claimed by rule when little else is said (at most
# CHITCHAT_REST_WORDS words, or as many Chinese characters, besides), so "are you a bot? how do I return my
# watch?" and "你是机器人吗？我想退货" stay questions.
CHITCHAT_REST_WORDS = 3
_CHITCHAT_RE = re.compile(
    r"""
    \b(tell|give)\s+me\s+a\s+(joke|story)\b | \b(sing|write)\s+(me\s+)?a\s+(song|poem|story)\b
    | \bare\s+you\s+(a\s+|an\s+)?(robot|bot|machine|human|real|ai|alive)\b | \bwho\s+(are|made|built|created)\s+you\b
    | \bhow\s+old\s+are\s+you\b | \bwhat'?s\s+your\s+(name|favou?rite)\b | \bdo\s+you\s+(dream|have\s+feelings)\b
    | 讲个笑话 | 讲个故事 | 写首诗 | 唱首歌 | 你是(谁|机器人|真人|人工智能|AI) | 你叫什么 | 你多大 | 陪我聊 | 聊聊天 | 天气怎么样
    """,
    re.IGNORECASE | re.VERBOSE,
)
_GREETING_RE = re.compile(
    r"\b(hi|hello|hey|hiya|howdy|greetings|(good\s+)?(morning|afternoon|evening)|good\s+day|yo|anybody\s+home)\b"
    r"|你好|您好|哈喽|嗨|早上好|下午好|晚上好|在吗|在不在|有人吗|有人在吗|喂",
    re.IGNORECASE,
)
_THANKS_RE = re.compile(
    r"\b(thanks|thank\s+you|thx|ty|cheers|much\s+appreciated|appreciate\s+it|great|perfect|awesome|brilliant|ok(ay)?|got\s+it"
    r"|that\s+help(s|ed)|(very\s+|really\s+|so\s+)?helpful|that\s+answers\s+my\s+question|that'?s\s+what\s+i\s+needed)\b"
    r"|谢谢|多谢|感谢|谢了|谢啦|好的|明白了|知道了|收到|太好了",
    re.IGNORECASE,
)
_GOODBYE_RE = re.compile(
    r"\b(bye|goodbye|good\s+bye|(see|talk\s+to|speak\s+to|catch)\s+(you|ya)(\s+later|\s+soon)?|that'?s\s+(all|everything)"
    r"|that\s+is\s+(all|everything)|i'?m\s+(done|all\s+set)|i\s+am\s+(done|all\s+set)|nothing\s+else|have\s+a\s+(nice|good)\s+day)\b"
    r"|再见|拜拜|没有了|没事了|就这些|没有其他问题|没有别的问题|没别的问题|先这样",
    re.IGNORECASE,
)
# What may stand beside a greeting, thanks or goodbye without making the message a question.
_FILLER_RE = re.compile(
    r"\b(there|so|very|much|a\s+lot|lot|again|guys|team|kefu|everyone|anyone|anybody|all|for\s+(your|the)\s+help|for\s+helping|"
    r"the\s+help|help|you'?ve|you|been|are|and|to|oh|ah|well|that'?s|that|it|is|was|all|i|ok|okay|bot|assistant|for|now|mate|"
    r"really|today|later|for\s+now)\b|啊|呀|哦|哈|啦|了|的|你|您|非常|十分|哈哈|帮助|帮忙|你们|客服|吧",
    re.IGNORECASE,
)
_RESIDUE_RE = re.compile(r"[\W_\d]+")
_LATIN_WORD_RE = re.compile(r"[A-Za-z]+")


def wants_human(text: str) -> bool:
    """True when the customer asks to talk to a person."""
    return bool(_HUMAN_RE.search(text))


def is_complaint(text: str) -> bool:
    return bool(_COMPLAINT_RE.search(text))


def _only(pattern: re.Pattern, text: str) -> bool:
    """True when `pattern` matches and nothing but filler words and punctuation remains without it."""
    if not pattern.search(text):
        return False
    rest = pattern.sub(" ", text)
    rest = _GREETING_RE.sub(" ", _THANKS_RE.sub(" ", _GOODBYE_RE.sub(" ", rest)))
    rest = _FILLER_RE.sub(" ", rest)
    return not _RESIDUE_RE.sub("", rest)


def _little_else(pattern: re.Pattern, text: str) -> bool:
    """True when, without `pattern` and filler words, at most CHITCHAT_REST_WORDS words and as many Chinese
    characters remain."""
    rest = _FILLER_RE.sub(" ", pattern.sub(" ", text))
    return len(_LATIN_WORD_RE.findall(rest)) <= CHITCHAT_REST_WORDS and cjk_count(rest) <= CHITCHAT_REST_WORDS


@dataclass(frozen=True)
class Intent:
    name: str
    confidence: float
    method: str  # "rule" | "examples" | "default"


def rule_intent(text: str) -> Intent | None:
    """The intent the rules are sure of, or None."""
    if wants_human(text):
        return Intent(HUMAN, 1.0, "rule")
    if is_complaint(text):
        return Intent(COMPLAINT, 1.0, "rule")
    if _CHITCHAT_RE.search(text) and _little_else(_CHITCHAT_RE, text):
        return Intent(CHITCHAT, 1.0, "rule")
    for name, pattern in ((GOODBYE, _GOODBYE_RE), (THANKS, _THANKS_RE), (GREETING, _GREETING_RE)):
        if _only(pattern, text):
            return Intent(name, 1.0, "rule")
    return None


def read_examples(path: Path = EXAMPLES_FILE) -> list[tuple[str, str]]:
    """(text, intent) pairs from a CSV with `text` and `intent` columns."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [(r["text"].strip(), r["intent"].strip()) for r in csv.DictReader(fh) if r.get("text", "").strip()]
    unknown = sorted({i for _, i in rows} - set(INTENTS))
    if unknown:
        raise ValueError(f"{path}: unknown intents {unknown}; use {', '.join(INTENTS)}")
    return rows


Embed = Callable[[Sequence[str]], np.ndarray]
Readable = Callable[[Sequence[str]], list[float]]


class IntentClassifier:
    """Rules, then the nearest labelled example. `embed` returns unit vectors (zero rows for unreadable text).
    With a `cache` folder, the examples' vectors are kept there (one file per embedding model and example set),
    so a new process does not embed them again."""

    def __init__(
        self,
        examples: Sequence[tuple[str, str]],
        embed: Embed | None = None,
        cache: Path | None = None,
        model: str = "",
        min_similarity: float = EXAMPLE_MIN_SIMILARITY,
        margin: float = EXAMPLE_MARGIN,
    ):
        self.examples = list(examples)
        self.embed = embed
        self.cache = cache
        self.model = model
        self.min_similarity = min_similarity
        self.margin = margin

    @cached_property
    def _vectors(self) -> np.ndarray:
        assert self.embed is not None
        texts = [t for t, _ in self.examples]
        if self.cache is None:
            return self.embed(texts)
        key = hashlib.sha256("\x00".join([self.model, *texts]).encode("utf-8")).hexdigest()[:24]
        path = self.cache / f"intent-examples-{key}.npy"
        try:
            vectors = np.load(path)
            if vectors.shape[0] == len(texts):
                return vectors
        except (OSError, ValueError):
            pass
        vectors = self.embed(texts)
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + f".{os.getpid()}.npy")
            np.save(partial, vectors)
            os.replace(partial, path)
        except OSError:
            pass  # a read-only home only costs the next process the embedding
        return vectors

    def classify(self, text: str) -> Intent:
        ruled = rule_intent(text)
        if ruled is not None:
            return ruled
        if self.embed is None or not self.examples or len(text.split()) > EXAMPLE_MAX_WORDS:
            return Intent(QUESTION, 0.0, "default")
        vector = self.embed([text])[0]
        if not vector.any():
            return Intent(QUESTION, 0.0, "default")
        return nearest_example(vector, self._vectors, [i for _, i in self.examples], self.min_similarity, self.margin)


def nearest_example(
    vector: np.ndarray,
    vectors: np.ndarray,
    labels: Sequence[str],
    min_similarity: float = EXAMPLE_MIN_SIMILARITY,
    margin: float = EXAMPLE_MARGIN,
) -> Intent:
    """The nearest example's intent when it is close (cosine ≥ `min_similarity`) and clearly closer than the
    nearest question (by `margin`)."""
    sims = vectors @ vector
    best = int(np.argmax(sims))
    question_sims = [s for s, label in zip(sims, labels) if label == QUESTION]
    nearest_question = max(question_sims, default=-1.0)
    label, sim = labels[best], float(sims[best])
    if label != QUESTION and sim >= min_similarity and sim - nearest_question >= margin:
        return Intent(label, sim, "examples")
    return Intent(QUESTION, float(nearest_question), "default")
