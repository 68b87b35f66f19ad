"""Components: the long-lived parts Kefu works with, built from `Settings` the first time each is needed.

Each component (analyzer, embedder, store, retriever, database, users, generator, rewriter, intent classifier,
answerer, dialogue manager) is built once, under its own lock: two threads asking at once get the same object,
and nothing loads twice (a model load takes seconds and gigabytes). A component that is never asked for is
never built, so a cold `kefu ask` answered from the FAQ loads no language model. Settings become each layer's
own configuration here and only here. Nothing in this module answers, ingests or renders: `app.services`
composes these into what front ends call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from app.errors import ConfigError
from app.settings import Settings, load_settings

T = TypeVar("T")

INDEX_CHECK_SECONDS = 30.0
CATALOGUE_SECONDS = 60.0


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
        self._catalogue: tuple[float, list[str]] = (float("-inf"), [])

    def built(self, name: str) -> bool:
        """Whether a component has been built (for `close` and the UI's warm-up status)."""
        return name in self.__dict__

    # -- retrieval ----------------------------------------------------------------------------------------

    @component
    def analyzer(self):
        from rag.analysis import Analyzer

        a = self.settings.analysis
        try:
            return Analyzer(chinese=a.zh_analyzer, user_dict=a.user_dict)
        except FileNotFoundError as exc:
            raise ConfigError(f"{exc}: fix KEFU_USER_DICT or unset it") from exc

    @component
    def embedder(self):
        from rag.embeddings import EmbeddingConfig, make_embedder
        from rag.query_cache import QueryCachingEmbedder

        e = self.settings.embedding
        return QueryCachingEmbedder(make_embedder(
            EmbeddingConfig(
                model=e.embedding_model,
                device=e.embedding_device,
                dtype=e.embedding_dtype,
                batch_size=e.embedding_batch_size,
                query_prefix=e.embedding_query_prefix,
                document_prefix=e.embedding_document_prefix,
            )
        ))

    @component
    def store(self):
        from rag.store_factory import make_store

        s = self.settings.store
        elasticsearch = None
        if s.store == "elasticsearch":
            from rag.elasticsearch.config import ElasticsearchConfig

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
        from rag.store import SearchFilter

        audiences = self.settings.answer.audiences()
        return self._retriever(SearchFilter(audiences=audiences) if audiences is not None else None)

    def _retriever(self, filters):
        from rag.retrieval import HybridRetriever

        r = self.settings.retrieval
        return HybridRetriever(self.store, self.embedder, self.analyzer, candidates=r.candidates, rrf_k=r.rrf_k, filters=filters)

    def check_index(self) -> None:
        """IndexMismatchError with the fix when the store was built with another embedding model or analysis.

        A passed check holds for INDEX_CHECK_SECONDS: reading the spec costs Elasticsearch three round trips,
        too many for every question, while a store only changes spec when it is emptied and re-ingested."""
        from rag.indexing import index_spec

        now = time.monotonic()
        if now - self._index_checked_at < INDEX_CHECK_SECONDS:
            return
        index_spec(self.embedder, self.analyzer).check(self.store.index_spec())
        self._index_checked_at = now

    def products(self) -> list[str]:
        """Product names the slots recognise: manual titles in the knowledge base and KEFU_PRODUCTS. Read from
        the store at most once a minute (a full document list), so another process's ingest shows up soon."""
        from app.slots import product_names

        read_at, names = self._catalogue
        if time.monotonic() - read_at >= CATALOGUE_SECONDS:
            titles = [d.title for d in self.store.list_documents()]
            names = product_names(titles, self.settings.dialogue.product_list())
            self._catalogue = (time.monotonic(), names)
        return names

    def forget_catalogue(self) -> None:
        """After an ingest or delete in this process: read the product names again on the next turn."""
        self._catalogue = (float("-inf"), [])

    # -- conversations ------------------------------------------------------------------------------------

    @component
    def database(self):
        from app.database import Database

        return Database(self.settings.database_url)

    @component
    def sessions(self):
        from app.sessions import SessionStore

        return SessionStore(self.database)

    @component
    def feedback(self):
        from app.feedback import FeedbackStore

        return FeedbackStore(self.database)

    @component
    def users(self):
        from app.users import UserStore

        return UserStore(self.database, self.settings.auth)

    # -- answering ----------------------------------------------------------------------------------------

    def generator_config(self):
        from inference.generator import GeneratorConfig

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
            openai_base_url=g.openai_base_url,
            openai_model=g.openai_model,
            openai_api_key=key.get_secret_value() if key else None,
            openai_timeout=g.openai_timeout,
        )

    def generator_status(self) -> dict[str, str]:
        """Which backend answers and why (what `KEFU_LLM=auto` chose), without loading a model."""
        from inference.factory import resolve_backend

        backend, reason = resolve_backend(self.generator_config())
        return {"backend": backend, "reason": reason}

    @component
    def generator(self):
        """The language model, loaded on first use; None means extractive answers."""
        import logging

        from inference.factory import make_generator

        generator = make_generator(self.generator_config())
        logging.getLogger(__name__).info(
            "answers: %s", generator.describe() if generator else self.generator_status()["reason"]
        )
        return generator

    @component
    def rewriter(self):
        from app.rewriting import HeuristicRewriter, ModelRewriter

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
        from app.answerer import Answerer

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
        )

    @component
    def intents(self):
        from app.intents import IntentClassifier, read_examples
        from rag.indexing import embed_readable

        embedder = self.embedder
        return IntentClassifier(
            read_examples(),
            lambda texts: embed_readable(embedder, list(texts), query=True),
            cache=self.settings.core.home / "cache",
            model=f"{embedder.name}:{embedder.dimension}",
        )

    @component
    def dialogue(self):
        from app.dialogue import DialogueManager

        return DialogueManager(
            self.answerer, self.sessions, self.feedback, self.intents, self.products, self.settings.dialogue
        )

    def close(self) -> None:
        if self.built("store"):
            self.store.close()
        if self.built("database"):
            self.database.close()
