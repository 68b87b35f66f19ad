"""The answer cache: answers that do not depend on a conversation, kept so the same question asked again is
answered without a search or a generation.

What may be cached: an answer to a question asked with no history and no slots (the first question of a
conversation, or an OpenAI-style request carrying one message), in mode `faq`, `extractive` or `generated`;
never an abstention, a refusal, small talk or a handoff (the dialogue manager decides, `app.dialogue.manager`).
A question holding personal data (`app.guardrails.pii.find_pii`) is never cached, and an entry holds only what the
knowledge base said (answer text, mode, sources, language, confidence), never the question: keys are hashes.

The key is a hash of the normalised question (Unicode NFKC, case folded, spaces collapsed, trailing
punctuation dropped), the search filters, a fingerprint of every setting that changes answers
(`settings_fingerprint`) and the knowledge store's **generation** (`KnowledgeStore.generation`), which every
write bumps: after an ingest or a delete, in any process, no entry written before it is ever read again.

Backends: `MemoryBackend` (an LRU in this process, the default) and `RedisBackend` (`KEFU_CACHE_URL=redis://…`,
shared by every worker and node). Each keeps an index from conversation to the entries its answers made, so
erasing a conversation (`app.guardrails.privacy`, `kefu erase`) removes them too (the memory backend only holds what its
own process answered). A cache that cannot be reached counts as a miss (answers go on; logged once per outage,
metric `kefu_answer_cache{result="error"}`, and not tried again for `RETRY_SECONDS`); an erasure that cannot
reach it fails loudly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Protocol

from app import metrics
from app.answering.rules import MODE_EXTRACTIVE, MODE_FAQ, MODE_GENERATED, Answer
from app.errors import ConfigError, KefuError, redact
from app.guardrails.pii import find_pii

if TYPE_CHECKING:
    from app.settings import Settings
    from rag.store import SearchFilter

CACHEABLE_MODES = (MODE_FAQ, MODE_EXTRACTIVE, MODE_GENERATED)
KEY_PREFIX = "kefu:answer:"
SESSION_PREFIX = "kefu:answer-session:"
FORMAT = 1  # bump when the stored value's shape changes
# generation settings that change how answers are served, not what they say
HOW_NOT_WHAT = ("openai_timeout", "llm_batch", "llm_queue")
RETRY_SECONDS = 15.0  # after a failure the cache is left alone this long (a miss each time, not a 2 s timeout)
_TRAILING = re.compile(r"[\s?？!！.。,，;；:：~～]+$")
log = logging.getLogger("kefu.cache")


def normalise(question: str) -> str:
    """The form questions are compared in: NFKC, case folded, spaces collapsed, trailing punctuation dropped."""
    text = " ".join(unicodedata.normalize("NFKC", question).casefold().split())
    return _TRAILING.sub("", text)


class CacheBackend(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str, session_id: str | None, ttl: int) -> None: ...

    def erase_session(self, session_id: str) -> int:
        """Remove the entries made by this conversation's answers; how many were still there."""

    def describe(self) -> str: ...


class MemoryBackend:
    """An LRU of at most `entries` values in this process, each expiring after its ttl."""

    def __init__(self, entries: int = 10_000):
        self.entries = entries
        self._values: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._sessions: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            found = self._values.get(key)
            if found is None:
                return None
            if found[0] < time.monotonic():
                del self._values[key]
                return None
            self._values.move_to_end(key)
            return found[1]

    def put(self, key: str, value: str, session_id: str | None, ttl: int) -> None:
        with self._lock:
            self._values[key] = (time.monotonic() + ttl, value)
            self._values.move_to_end(key)
            while len(self._values) > self.entries:
                self._values.popitem(last=False)
            if session_id:
                self._sessions.setdefault(session_id, set()).add(key)

    def erase_session(self, session_id: str) -> int:
        with self._lock:
            keys = self._sessions.pop(session_id, set())
            return sum(self._values.pop(k, None) is not None for k in keys)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def describe(self) -> str:
        return f"memory (up to {self.entries} answers in this process)"


class RedisBackend:
    """Redis at `url`: values with a ttl, and a set of keys per conversation (expiring with them)."""

    def __init__(self, url: str, client: Any = None):
        self.url = url
        if client is None:
            try:
                import redis  # the optional shared backend: only when KEFU_CACHE_URL names a Redis
            except ImportError:
                raise ConfigError(f"KEFU_CACHE_URL={redact(url)} needs the redis package: pip install 'kefu[redis]'") from None
            client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30)
        self.client = client

    def get(self, key: str) -> str | None:
        value = self.client.get(key)
        return value.decode("utf-8") if isinstance(value, bytes) else value

    def put(self, key: str, value: str, session_id: str | None, ttl: int) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, value, ex=ttl)
        if session_id:
            index = SESSION_PREFIX + session_id
            pipe.sadd(index, key)
            pipe.expire(index, ttl)
        pipe.execute()

    def erase_session(self, session_id: str) -> int:
        index = SESSION_PREFIX + session_id
        try:
            keys = [k.decode() if isinstance(k, bytes) else k for k in self.client.smembers(index)]
            removed = int(self.client.delete(*keys)) if keys else 0
            self.client.delete(index)
        except Exception as exc:
            raise KefuError(
                f"could not erase cached answers of {session_id} from the answer cache at {redact(self.url)}: {exc}. "
                "Start Redis (or fix KEFU_CACHE_URL) and erase again"
            ) from exc
        return removed

    def describe(self) -> str:
        return f"redis at {redact(self.url)} (shared by every process)"


def make_backend(url: str, entries: int = 10_000) -> CacheBackend | None:
    """The backend KEFU_CACHE_URL names: `memory`, `redis://…`/`rediss://…`/`unix://…`, or `none` (None)."""
    choice = url.strip()
    if choice.lower() in ("none", "off", ""):
        return None
    if choice.lower() == "memory":
        return MemoryBackend(entries)
    if choice.startswith(("redis://", "rediss://", "unix://")):
        return RedisBackend(choice)
    raise ConfigError(f"KEFU_CACHE_URL={redact(choice)!r} is not a cache: use memory, none, or redis://host:6379/0")


def store_identity(settings: Settings) -> list[str]:
    """Which knowledge store answers come from, the same in every process that uses it: Elasticsearch's URL
    (no credentials) and index, or the SQLite store's folder. Two knowledge bases sharing one Redis never
    read each other's answers, even at the same generation."""
    s = settings.store
    if s.store == "elasticsearch":
        return ["elasticsearch", redact(s.es_url.rstrip("/")), s.es_index]
    return ["sqlite", str(settings.core.home.expanduser().resolve())]


def settings_fingerprint(settings: Settings, backend: str) -> str:
    """A hash of the knowledge store's identity, of every setting that changes what an answer says (retrieval,
    thresholds, audiences, models, the rewriter, generation, the output policy) and of the generator that
    `KEFU_LLM` resolved to: processes configured alike share entries, and a changed setting never reads an
    answer made under another."""

    def dump(group) -> dict[str, Any]:
        return json.loads(group.model_dump_json())

    g = settings.guardrails
    patterns = g.blocked_patterns() if g.blocked_patterns_file else []
    try:
        kefu_version = version("kefu")
    except PackageNotFoundError:
        kefu_version = "dev"
    parts = {
        "format": FORMAT,
        "kefu": kefu_version,
        "backend": backend,
        "store": store_identity(settings),
        "answer": dump(settings.answer),
        "rewriter": settings.dialogue.rewriter,
        "retrieval": dump(settings.retrieval),
        "embedding": dump(settings.embedding),
        "analysis": dump(settings.analysis),
        "generation": {k: v for k, v in dump(settings.generation).items() if not k.startswith(HOW_NOT_WHAT)},
        "policy": [g.allowed_link_domains, g.allowed_image_hosts, patterns, g.max_message_chars],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


class AnswerCache:
    """Keys, reads and writes answers over a backend; a backend that fails is a miss, never an error."""

    def __init__(self, backend: CacheBackend, generation: Callable[[], int], fingerprint: Callable[[], str], ttl: int = 86_400):
        self.backend = backend
        self._generation = generation  # the knowledge store's, read for every key
        self._fingerprint = fingerprint  # computed once, on first use
        self._fingerprint_value: str | None = None
        self.ttl = ttl
        self._down_until = float("-inf")  # while the backend is failing: when to try it again
        self._lock = threading.Lock()

    def key(self, question: str, filters: SearchFilter | None = None, personal: bool | None = None) -> str | None:
        """The key of a conversation-free question, or None when it must not be cached: it holds personal data
        (`personal`, when the caller has looked already; otherwise the question is scanned here)."""
        if personal if personal is not None else find_pii(question):
            return None
        if self._fingerprint_value is None:
            self._fingerprint_value = self._fingerprint()
        clauses = filters.clauses() if filters is not None else []
        payload = json.dumps([normalise(question), clauses, self._fingerprint_value, self._generation()], ensure_ascii=False)
        return KEY_PREFIX + hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get(self, key: str) -> Answer | None:
        """The cached answer (marked `cached`), or None; an unreachable cache is a miss (counted `error`)."""
        if self._resting():
            metrics.CACHE.labels("error").inc()
            return None
        try:
            raw = self.backend.get(key)
            value = json.loads(raw) if raw else None
            answer = None if value is None else Answer(
                value["answer"], value["mode"], value["sources"], language=value["language"],
                confidence=value["confidence"], guardrails=value["guardrails"], cached=True,
            )  # fmt: skip
        except Exception as exc:  # unreachable, or a value this version cannot read: answer without it
            self._failed("read", exc)
            metrics.CACHE.labels("error").inc()
            return None
        self._recovered()
        metrics.CACHE.labels("miss" if answer is None else "hit").inc()
        return answer

    def put(self, key: str, answer: Answer, session_id: str | None = None) -> None:
        """Keep a conversation-free answer (FAQ, extractive or generated), recorded as made by `session_id`;
        other modes are ignored."""
        if answer.mode not in CACHEABLE_MODES or self._resting():
            return
        value = {"answer": answer.answer, "mode": answer.mode, "sources": answer.sources, "language": answer.language,
                 "confidence": answer.confidence, "guardrails": answer.guardrails}  # fmt: skip
        try:
            self.backend.put(key, json.dumps(value, ensure_ascii=False), session_id, self.ttl)
        except Exception as exc:
            self._failed("write", exc)
            return
        self._recovered()

    def erase_session(self, session_id: str) -> int:
        """The eraser `app.guardrails.privacy` calls: entries made by this conversation's answers. Raises when the
        backend cannot be reached (an erasure must not pass silently)."""
        return self.backend.erase_session(session_id)

    def describe(self) -> str:
        return self.backend.describe()

    def _resting(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            first = self._down_until == float("-inf")
            self._down_until = time.monotonic() + RETRY_SECONDS
        if first:  # once per outage, not once per request
            log.warning("answer cache %s: could not %s (%s: %s); answering without it until it is back",
                        self.describe(), what, type(exc).__name__, redact(str(exc)))  # fmt: skip

    def _recovered(self) -> None:
        if self._down_until != float("-inf"):
            with self._lock:
                self._down_until = float("-inf")
            log.warning("answer cache %s is back", self.describe())
