"""Services: the one API every front end (CLI, Streamlit, benchmarks) uses. Builds the store, embedder,
analyzer and retriever from `Settings` on first use and exposes ingest, search, ask and document management.

Front ends hold one `KefuService` (the UI in an `st.cache_resource`); it is safe to share between threads.
Answers search only the audiences KEFU_ANSWER_AUDIENCES allows; `search` sees every document unless given a
`SearchFilter`. Index maintenance (`rebuild`, `export`, `import`) works on whichever store KEFU_STORE names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from app.answering import Answer
from app.dialogue import DialogueManager
from app.errors import ConfigError, InputError, NotFoundError
from app.sessions import SessionStore, Turn
from app.settings import Settings, load_settings
from ingest.pipeline import FAILED, INDEXED, SKIPPED, UNCHANGED, ChunkingOptions, FileResult, discover, load_file
from ingest.documents import DEFAULT_AUDIENCE, DEFAULT_COLLECTION, check_label
from ingest.loaders import LoadError
from rag.analysis import Analyzer
from rag.embeddings import EmbeddingConfig, make_embedder
from rag.indexing import Indexer
from rag.retrieval import HybridRetriever, SearchHit
from rag.store import DocumentInfo, KnowledgeStore, SearchFilter, doc_id_of, make_store


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

    @cached_property
    def retriever(self) -> HybridRetriever:
        """Searches every document (`kefu search`, benchmarks); a call may pass its own filter."""
        r = self.settings.retrieval
        return HybridRetriever(self.store, self.embedder, self.analyzer, candidates=r.candidates, rrf_k=r.rrf_k)

    @cached_property
    def answer_retriever(self) -> HybridRetriever:
        """Searches only what customers may be shown: the audiences in KEFU_ANSWER_AUDIENCES."""
        r = self.settings.retrieval
        audiences = self.settings.answer.audiences()
        filters = SearchFilter(audiences=audiences) if audiences is not None else None
        return HybridRetriever(
            self.store, self.embedder, self.analyzer, candidates=r.candidates, rrf_k=r.rrf_k, filters=filters
        )

    @cached_property
    def sessions(self) -> SessionStore:
        return SessionStore(self.settings.database_url)

    @cached_property
    def dialogue(self) -> DialogueManager:
        return DialogueManager(self.answer_retriever, self.sessions, self.analyzer, self.settings.answer)

    def check_index(self) -> None:
        """IndexMismatchError with the fix when the store was built with another embedding model or analysis."""
        self._check_index()

    def _check_index(self) -> None:
        from rag.indexing import index_spec

        index_spec(self.embedder, self.analyzer).check(self.store.index_spec())

    # -- ingest -------------------------------------------------------------------------------------------

    def ingest(
        self,
        paths: Iterable[Path | str],
        on_file: Callable[[FileResult], None] | None = None,
        on_documents: Callable[[int], None] | None = None,
        collection: str = DEFAULT_COLLECTION,
        audience: str = DEFAULT_AUDIENCE,
    ) -> IngestReport:
        """Index files and folders into a collection, for an audience. Every file gets a status; one bad file
        never stops the others."""
        try:
            labels = (check_label("collection", collection), check_label("audience", audience))
        except ValueError as exc:
            raise InputError(str(exc)) from None
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
                result = self._ingest_file(path, indexer, options, on_documents, labels)
            report.files.append(result)
            if on_file:
                on_file(result)
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_file(
        self,
        path: Path,
        indexer: Indexer,
        options: ChunkingOptions,
        on_documents: Callable[[int], None] | None,
        labels: tuple[str, str],
    ) -> FileResult:
        try:
            documents = load_file(path, options)
        except LoadError as exc:
            return FileResult(str(path), FAILED, error=str(exc))
        if not documents:
            return FileResult(str(path), SKIPPED, error=f"unsupported file type {path.suffix or '(none)'!r}")
        for doc in documents:
            doc.collection, doc.audience = labels
        outcomes = indexer.index(documents, on_progress=on_documents)
        ids, chunks = [o.doc_id for o in outcomes], sum(o.chunks for o in outcomes)
        failed = [o for o in outcomes if o.status == FAILED]
        if failed:
            error = "; ".join(f"{o.doc_id}: {o.error}" for o in failed[:3]) + (" …" if len(failed) > 3 else "")
            return FileResult(str(path), FAILED, ids, chunks, error=f"{len(failed)} of {len(outcomes)} documents not stored ({error})")
        status = INDEXED if any(o.status == INDEXED for o in outcomes) else UNCHANGED
        return FileResult(str(path), status, ids, chunks)

    # -- search and answers -------------------------------------------------------------------------------

    def search(
        self, query: str, k: int = 10, mode: str = "hybrid", filters: SearchFilter | None = None
    ) -> list[SearchHit]:
        self._check_index()
        return self.retriever.search(query, k=k, mode=mode, filters=filters)

    def search_run(
        self,
        queries: Sequence[tuple[str, str]],
        k: int = 100,
        mode: str = "hybrid",
        batch_size: int = 256,
        filters: SearchFilter | None = None,
    ) -> dict[str, list[tuple[str, float]]]:
        """Batch search for evaluation: {query id: [(document id, score), ...]}, best first, one entry per
        document (its best chunk's score)."""
        self._check_index()
        run: dict[str, list[tuple[str, float]]] = {}
        for i in range(0, len(queries), batch_size):
            part = queries[i : i + batch_size]
            texts = [text for _, text in part]
            results = self.retriever.search_many(texts, k=k, mode=mode, per_document=True, filters=filters)
            for (qid, _), hits in zip(part, results):
                run[qid] = [(doc_id_of(h.chunk.chunk_id), h.score) for h in hits]
        return run

    def ask(self, question: str, session_id: str | None = None) -> Answer:
        self._check_index()
        return self.dialogue.ask(question, session_id)

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

    # -- index maintenance --------------------------------------------------------------------------------

    def rebuild_index(self) -> dict[str, Any]:
        return self.store.rebuild()

    def export_index(self, path: Path) -> dict[str, Any]:
        """Write every document, chunk, term and vector to a JSONL file (see rag.transfer)."""
        from rag.transfer import export_store

        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("w", encoding="utf-8") as out:
                documents, chunks = export_store(self.store, out)
            partial.replace(path)  # a complete file or none: an interrupted export never looks finished
        except OSError as exc:
            raise InputError(f"cannot write the export {path}: {exc.strerror or exc}") from None
        finally:
            partial.unlink(missing_ok=True)
        return {"path": str(path), "documents": documents, "chunks": chunks, "store": self.store.stats()["store"]}

    def import_index(self, path: Path) -> dict[str, Any]:
        """Read an export into the configured store; it must match the configured embedding model and analysis."""
        from rag.indexing import index_spec
        from rag.transfer import import_file

        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"{path} does not exist (make one with `kefu index export PATH`)")
        report = import_file(self.store, path, index_spec(self.embedder, self.analyzer))
        return {"path": str(path), **report.to_dict(), "store": self.store.stats()["store"]}

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "sessions" in self.__dict__:
            self.sessions.close()
