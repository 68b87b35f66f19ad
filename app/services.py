"""Services: the one API every front end (CLI, Streamlit, benchmarks) uses. Builds the store, embedder,
analyzer, retriever and generator (the language model, if any) from `Settings` on first use and exposes ingest,
search, ask (whole, streamed, or batched) and document management.

Front ends hold one `KefuService` (the UI in an `st.cache_resource`); it is safe to share between threads.
Answers search only the audiences KEFU_ANSWER_AUDIENCES allows; `search` sees every document unless given a
`SearchFilter`. Index maintenance (`rebuild`, `export`, `import`) works on whichever store KEFU_STORE names.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from app.answering import Answer
from app.dialogue import DialogueManager, Reply
from app.errors import ConfigError, InputError, NotFoundError
from app.sessions import SessionStore, Turn
from app.settings import Settings, load_settings
from inference.generator import Generator, GeneratorConfig, make_generator, resolve_backend
from ingest.documents import DEFAULT_AUDIENCE, DEFAULT_COLLECTION, Document, check_label
from ingest.errors import LoadError
from ingest.limits import Limits
from ingest.loaders import LoadOptions
from ingest.pipeline import (
    FAILED,
    INDEXED,
    SKIPPED,
    UNCHANGED,
    ChunkingOptions,
    FileLoader,
    FileResult,
    discover,
    safe_upload_name,
    supported,
)
from rag.analysis import Analyzer
from rag.embedding_factory import make_embedder, make_multilingual
from rag.embeddings import EmbeddingConfig
from rag.indexing import WRITE_GROUP_CHUNKS, Indexer
from rag.retrieval import HybridRetriever, SearchHit
from rag.store import DocumentInfo, KnowledgeStore, SearchFilter, doc_id_of, make_store
from rag.vector_spaces import VectorSpaces

log = logging.getLogger(__name__)

INDEX_CHECK_SECONDS = 30.0


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
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
            "pruned": len(self.pruned),
            "seconds": round(self.seconds, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"files": [f.to_dict() for f in self.files], "pruned": self.pruned, "summary": self.summary}


def _labels(collection: str, audience: str) -> tuple[str, str]:
    try:
        return check_label("collection", collection), check_label("audience", audience)
    except ValueError as exc:
        raise InputError(str(exc)) from None


@dataclass
class IngestProgress:
    """Where a running ingest is, for a progress bar: reported after each file is read and each write."""

    files_done: int
    files_total: int
    documents: int
    chunks: int
    current: str = ""


@dataclass
class _Pending:
    """Files read and chunked but not yet written: written together so embedding batches stay full."""

    items: list[tuple[FileResult, list[Document], set[str]]] = field(default_factory=list)
    chunks: int = 0


class KefuService:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self._index_checked_at = float("-inf")

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
        """The main embedding model (it also counts tokens for chunking)."""
        e = self.settings.embedding
        return make_embedder(
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
        )

    @cached_property
    def spaces(self) -> VectorSpaces:
        """The main and multilingual models and which text each embeds (rag.vector_spaces)."""
        e = self.settings.embedding
        multilingual = make_multilingual(
            EmbeddingConfig(model=e.multilingual_model, device=e.embedding_device, dtype=e.embedding_dtype,
                            batch_size=e.embedding_batch_size, threads=e.embedding_threads)  # fmt: skip
        )
        return VectorSpaces(self.embedder, multilingual, e.multilingual_scope)

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
        return HybridRetriever(self.store, self.spaces, self.analyzer, candidates=r.candidates, rrf_k=r.rrf_k)

    @cached_property
    def answer_retriever(self) -> HybridRetriever:
        """Searches only what customers may be shown: the audiences in KEFU_ANSWER_AUDIENCES."""
        r = self.settings.retrieval
        audiences = self.settings.answer.audiences()
        filters = SearchFilter(audiences=audiences) if audiences is not None else None
        return HybridRetriever(
            self.store, self.spaces, self.analyzer, candidates=r.candidates, rrf_k=r.rrf_k, filters=filters
        )

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
            self.answer_retriever,
            self.sessions,
            self.analyzer,
            self.settings.answer,
            lambda: self.generator,  # loaded only when an answer is to be written
            g.max_new_tokens,
        )

    def check_index(self) -> None:
        """IndexMismatchError with the fix when the store was built with another embedding model or analysis.

        A passed check holds for INDEX_CHECK_SECONDS: reading the spec costs Elasticsearch three round trips,
        too many for every question, while a store only changes spec when it is emptied and re-ingested."""
        from rag.indexing import index_spec

        now = time.monotonic()
        if now - self._index_checked_at < INDEX_CHECK_SECONDS:
            return
        index_spec(self.spaces, self.analyzer).check(self.store.index_spec())
        self._index_checked_at = now

    # -- ingest -------------------------------------------------------------------------------------------

    def file_loader(self) -> FileLoader:
        i = self.settings.ingest
        limits = Limits(
            max_file_mb=i.max_file_mb,
            parse_timeout_s=i.parse_timeout,
            parse_memory_mb=i.parse_memory_mb,
            max_zip_entries=i.max_zip_entries,
            max_unzipped_mb=i.max_unzipped_mb,
            max_zip_ratio=i.max_zip_ratio,
        )
        chunking = ChunkingOptions(
            count_tokens=self.embedder.count_tokens,
            max_tokens=min(i.chunk_tokens, self.embedder.max_tokens),
            overlap=i.chunk_overlap,
        )
        load = LoadOptions(question_column=i.faq_question_column, answer_column=i.faq_answer_column, limits=limits)
        return FileLoader(chunking, load)

    def ingest(
        self,
        paths: Iterable[Path | str],
        prune: bool = False,
        on_file: Callable[[FileResult], None] | None = None,
        on_progress: Callable[[IngestProgress], None] | None = None,
        collection: str = DEFAULT_COLLECTION,
        audience: str = DEFAULT_AUDIENCE,
    ) -> IngestReport:
        """Index files and folders into a collection, for an audience. Every file gets a status; one bad file
        never stops the others.

        A changed file replaces its documents (and drops those it no longer holds); an unchanged one writes
        nothing. With prune, documents whose files under these paths are gone are deleted too.
        """
        labels = _labels(collection, audience)
        roots = [Path(p) for p in paths]
        found = list(discover(roots))
        return self._ingest_files(
            [(path, None, problem) for path, problem in found],
            labels,
            on_file,
            on_progress,
            prune_roots=roots if prune else None,
        )

    def ingest_uploads(
        self,
        uploads: Sequence[tuple[str, bytes]],
        on_file: Callable[[FileResult], None] | None = None,
        on_progress: Callable[[IngestProgress], None] | None = None,
        collection: str = DEFAULT_COLLECTION,
        audience: str = DEFAULT_AUDIENCE,
    ) -> IngestReport:
        """Index uploaded files (name, content). A name is only a label: the bytes are stored under
        $KEFU_HOME/uploads by a hash of the label, and the same name uploaded again replaces its document."""
        labels = _labels(collection, audience)
        folder = self.settings.core.home / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        files: list[tuple[Path, str | None, str | None]] = []
        for name, data in uploads:
            label = "upload/" + safe_upload_name(name)
            if not supported(label):
                files.append((Path(label), None, None))  # reported as skipped; nothing is written
                continue
            if len(data) > self.settings.ingest.max_file_mb * 1024 * 1024:
                files.append((Path(label), None, f"{label} is larger than {self.settings.ingest.max_file_mb} MB (KEFU_MAX_FILE_MB)"))
                continue
            stored = folder / (hashlib.sha1(label.encode("utf-8")).hexdigest()[:20] + Path(label).suffix.lower())
            stored.write_bytes(data)
            files.append((stored, label, None))
        return self._ingest_files(files, labels, on_file, on_progress)

    def _ingest_files(
        self,
        files: list[tuple[Path, str | None, str | None]],
        labels: tuple[str, str],
        on_file: Callable[[FileResult], None] | None,
        on_progress: Callable[[IngestProgress], None] | None,
        prune_roots: list[Path] | None = None,
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        indexer = Indexer(self.store, self.spaces, self.analyzer)
        by_path = self._documents_by_path()
        pending = _Pending()
        totals = {"documents": 0, "chunks": 0}

        def finish(result: FileResult) -> None:
            report.files.append(result)
            if on_file:
                on_file(result)
            if on_progress:
                on_progress(IngestProgress(len(report.files), len(files), totals["documents"], totals["chunks"], result.path))

        def flush() -> None:
            documents = [d for _, docs, _ in pending.items for d in docs]
            outcomes = {o.doc_id: o for o in indexer.index(documents)}
            for result, docs, stale in pending.items:
                mine = [outcomes[d.doc_id] for d in docs]
                result.doc_ids = [o.doc_id for o in mine]
                result.chunks = sum(o.chunks for o in mine)
                failed = [o for o in mine if o.status == FAILED]
                if failed:  # the store refused some documents (Elasticsearch bulk errors): the file failed
                    reasons = "; ".join(f"{o.doc_id}: {o.error}" for o in failed[:3]) + (" …" if len(failed) > 3 else "")
                    result.status = FAILED
                    result.error = f"{len(failed)} of {len(mine)} documents not stored ({reasons})"
                    finish(result)
                    continue
                if stale:  # documents this file held before and holds no more
                    self.store.delete_documents(sorted(stale))
                result.status = INDEXED if stale or any(o.status == INDEXED for o in mine) else UNCHANGED
                if result.status == INDEXED:
                    totals["documents"] += sum(1 for o in mine if o.status == INDEXED)
                    totals["chunks"] += sum(o.chunks for o in mine if o.status == INDEXED)
                finish(result)
            pending.items.clear()
            pending.chunks = 0

        with self.file_loader() as loader:
            for path, source, problem in files:
                label = source or str(path)
                if problem is not None:
                    finish(FileResult(label, FAILED, error=problem))
                    continue
                if not supported(source or path):
                    finish(FileResult(label, SKIPPED, error=f"unsupported file type {Path(label).suffix or '(none)'!r}"))
                    continue
                try:
                    documents = loader.load(path, source)
                except LoadError as exc:
                    finish(FileResult(label, FAILED, error=str(exc)))
                    continue
                for doc in documents:
                    doc.collection, doc.audience = labels
                previous = by_path.get(str(path.resolve()), set())
                stale = previous - {d.doc_id for d in documents}
                pending.items.append((FileResult(label, INDEXED), documents, stale))
                pending.chunks += sum(len(d.chunks) for d in documents)
                if pending.chunks >= WRITE_GROUP_CHUNKS:
                    flush()
            flush()
        if prune_roots is not None:
            report.pruned = self._prune(prune_roots, by_path)
        report.seconds = time.perf_counter() - started
        return report

    def _documents_by_path(self) -> dict[str, set[str]]:
        by_path: dict[str, set[str]] = {}
        for doc in self.store.list_documents():
            path = doc.metadata.get("path")
            if path:
                by_path.setdefault(path, set()).add(doc.doc_id)
        return by_path

    def _prune(self, roots: list[Path], by_path: dict[str, set[str]]) -> list[str]:
        """Delete documents whose file lay under one of the roots (or was one of them) and is gone."""
        resolved = [r.resolve() for r in roots]
        gone: list[str] = []
        for path, doc_ids in by_path.items():
            p = Path(path)
            inside = any(p == r or r in p.parents for r in resolved)
            if inside and not p.exists():
                gone.extend(sorted(doc_ids))
        if gone:
            self.store.delete_documents(gone)
        return gone

    # -- search and answers -------------------------------------------------------------------------------

    def search(
        self, query: str, k: int = 10, mode: str = "hybrid", filters: SearchFilter | None = None
    ) -> list[SearchHit]:
        self.check_index()
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
        self.check_index()
        run: dict[str, list[tuple[str, float]]] = {}
        for i in range(0, len(queries), batch_size):
            part = queries[i : i + batch_size]
            texts = [text for _, text in part]
            results = self.retriever.search_many(texts, k=k, mode=mode, per_document=True, filters=filters)
            for (qid, _), hits in zip(part, results):
                run[qid] = [(doc_id_of(h.chunk.chunk_id), h.score) for h in hits]
        return run

    def ask(self, question: str, session_id: str | None = None) -> Answer:
        self.check_index()
        return self.dialogue.ask(question, session_id)

    def ask_stream(self, question: str, session_id: str | None = None) -> Reply:
        """The answer's text as it is written (iterate), then `.answer` (or `.finish()`) for the result."""
        self.check_index()
        return self.dialogue.ask_stream(question, session_id)

    def ask_batch(self, questions: Sequence[str]) -> list[Answer]:
        """Answer many independent questions (batch FAQ answering): one batched generation."""
        self.check_index()
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

    # -- index maintenance --------------------------------------------------------------------------------

    def rebuild_index(self, on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Re-embed (and re-analyse) what the configured models and analysis need, or only compact the store
        when nothing changed; on_progress(documents done, documents in all)."""
        from rag.reembedding import rebuild_index

        result = rebuild_index(self.store, self.spaces, self.analyzer, on_progress)
        self._index_checked_at = float("-inf")
        return result

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
        report = import_file(self.store, path, index_spec(self.spaces, self.analyzer))
        return {"path": str(path), **report.to_dict(), "store": self.store.stats()["store"]}

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "sessions" in self.__dict__:
            self.sessions.close()
