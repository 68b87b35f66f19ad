"""Services: the one API every front end (CLI, Streamlit, benchmarks) uses. Builds the store, embedder,
analyzer, retriever and generator (the language model, if any) from `Settings` on first use and exposes ingest,
search, ask (whole, streamed, or batched) and document management.

Front ends hold one `KefuService` (the UI in an `st.cache_resource`); it is safe to share between threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from app.answering import Answer
from app.dialogue import DialogueManager, Reply
from app.errors import ConfigError, NotFoundError
from app.sessions import SessionStore, Turn
from app.settings import Settings, load_settings
from ingest.pipeline import FAILED, INDEXED, SKIPPED, UNCHANGED, ChunkingOptions, FileResult, discover, load_file
from inference.generator import Generator, GeneratorConfig, make_generator, resolve_backend
from ingest.loaders import LoadError
from rag.analysis import Analyzer
from rag.embeddings import EmbeddingConfig, make_embedder
from rag.indexing import Indexer
from rag.retrieval import HybridRetriever, SearchHit
from rag.store import DocumentInfo, KnowledgeStore, doc_id_of, make_store

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def summary(self) -> dict[str, Any]:
        counts = {status: 0 for status in (INDEXED, UNCHANGED, FAILED, SKIPPED)}
        for f in self.files:
            counts[f.status] += 1
        return {
            "files": len(self.files),
            **counts,
            "documents": sum(len(f.doc_ids) for f in self.files if f.status == INDEXED),
            "chunks": sum(f.chunks for f in self.files if f.status == INDEXED),
            "seconds": round(self.seconds, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"files": [f.to_dict() for f in self.files], "summary": self.summary}


class KefuService:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()

    # -- components, built on first use ------------------------------------------------------------------

    @cached_property
    def analyzer(self) -> Analyzer:
        a = self.settings.analysis
        try:
            return Analyzer(chinese=a.zh_analyzer, user_dict=a.user_dict)
        except FileNotFoundError as exc:
            raise ConfigError(f"{exc}: fix KEFU_USER_DICT or unset it") from exc

    @cached_property
    def embedder(self):
        e = self.settings.embedding
        return make_embedder(
            EmbeddingConfig(
                model=e.embedding_model,
                device=e.embedding_device,
                dtype=e.embedding_dtype,
                batch_size=e.embedding_batch_size,
                query_prefix=e.embedding_query_prefix,
                document_prefix=e.embedding_document_prefix,
            )
        )

    @cached_property
    def store(self) -> KnowledgeStore:
        return make_store(self.settings.store.store, self.settings.core.home)

    @cached_property
    def retriever(self) -> HybridRetriever:
        r = self.settings.retrieval
        return HybridRetriever(self.store, self.embedder, self.analyzer, candidates=r.candidates, rrf_k=r.rrf_k)

    @cached_property
    def sessions(self) -> SessionStore:
        return SessionStore(self.settings.database_url)

    def generator_config(self) -> GeneratorConfig:
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
        backend, reason = resolve_backend(self.generator_config())
        return {"backend": backend, "reason": reason}

    @cached_property
    def generator(self) -> Generator | None:
        """The language model, loaded on first use; None means extractive answers."""
        generator = make_generator(self.generator_config())
        log.info("answers: %s", generator.describe() if generator else self.generator_status()["reason"])
        return generator

    @cached_property
    def dialogue(self) -> DialogueManager:
        g = self.settings.generation
        if g.max_new_tokens >= g.context_tokens:
            raise ConfigError(
                f"KEFU_MAX_NEW_TOKENS={g.max_new_tokens} leaves no room for a prompt in KEFU_CONTEXT_TOKENS="
                f"{g.context_tokens}: lower the first or raise the second"
            )
        return DialogueManager(
            self.retriever, self.sessions, self.analyzer, self.settings.answer, self.generator, g.max_new_tokens
        )

    def _check_index(self) -> None:
        from rag.indexing import index_spec

        index_spec(self.embedder, self.analyzer).check(self.store.index_spec())

    # -- ingest -------------------------------------------------------------------------------------------

    def ingest(
        self,
        paths: Iterable[Path | str],
        on_file: Callable[[FileResult], None] | None = None,
        on_documents: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Index files and folders. Every file gets a status; one bad file never stops the others."""
        started = time.perf_counter()
        report = IngestReport()
        indexer = Indexer(self.store, self.embedder, self.analyzer)
        options = ChunkingOptions(
            count_tokens=self.embedder.count_tokens,
            max_tokens=min(self.settings.ingest.chunk_tokens, self.embedder.max_tokens),
            overlap=self.settings.ingest.chunk_overlap,
        )
        for path, problem in discover(Path(p) for p in paths):
            if problem is not None:
                result = FileResult(str(path), FAILED, error=problem)
            else:
                result = self._ingest_file(path, indexer, options, on_documents)
            report.files.append(result)
            if on_file:
                on_file(result)
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_file(
        self, path: Path, indexer: Indexer, options: ChunkingOptions, on_documents: Callable[[int], None] | None
    ) -> FileResult:
        try:
            documents = load_file(path, options)
        except LoadError as exc:
            return FileResult(str(path), FAILED, error=str(exc))
        if not documents:
            return FileResult(str(path), SKIPPED, error=f"unsupported file type {path.suffix or '(none)'!r}")
        outcomes = indexer.index(documents, on_progress=on_documents)
        status = INDEXED if any(o.status == INDEXED for o in outcomes) else UNCHANGED
        return FileResult(str(path), status, [o.doc_id for o in outcomes], sum(o.chunks for o in outcomes))

    # -- search and answers -------------------------------------------------------------------------------

    def search(self, query: str, k: int = 10, mode: str = "hybrid") -> list[SearchHit]:
        self._check_index()
        return self.retriever.search(query, k=k, mode=mode)

    def search_run(
        self, queries: Sequence[tuple[str, str]], k: int = 100, mode: str = "hybrid", batch_size: int = 256
    ) -> dict[str, list[tuple[str, float]]]:
        """Batch search for evaluation: {query id: [(document id, score), ...]}, best first, one entry per
        document (its best chunk's score)."""
        self._check_index()
        run: dict[str, list[tuple[str, float]]] = {}
        for i in range(0, len(queries), batch_size):
            part = queries[i : i + batch_size]
            results = self.retriever.search_many([text for _, text in part], k=k, mode=mode, per_document=True)
            for (qid, _), hits in zip(part, results):
                run[qid] = [(doc_id_of(h.chunk.chunk_id), h.score) for h in hits]
        return run

    def ask(self, question: str, session_id: str | None = None) -> Answer:
        self._check_index()
        return self.dialogue.ask(question, session_id)

    def ask_stream(self, question: str, session_id: str | None = None) -> Reply:
        """The answer's text as it is written (iterate), then `.answer` (or `.finish()`) for the result."""
        self._check_index()
        return self.dialogue.ask_stream(question, session_id)

    def ask_batch(self, questions: Sequence[str]) -> list[Answer]:
        """Answer many independent questions (batch FAQ answering): one batched generation."""
        self._check_index()
        return self.dialogue.ask_batch(questions)

    def history(self, session_id: str) -> list[Turn]:
        return self.sessions.history(session_id)

    # -- documents ----------------------------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        return self.store.list_documents()

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        known = {d.doc_id for d in self.store.list_documents()}
        missing = [d for d in doc_ids if d not in known]
        if missing:
            raise NotFoundError(f"no document with id {', '.join(map(repr, missing))} (see `kefu docs list`)")
        return self.store.delete_documents(doc_ids)

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "sessions" in self.__dict__:
            self.sessions.close()
