"""Ingestion: files, folders and uploads into the knowledge store, each file with a status.

`ingest/` reads and chunks files (sandboxed); `rag.indexing` embeds and writes documents. This module runs
one ingest: it discovers files, hands them to the loader, writes documents in groups large enough to keep
embedding batches full, replaces what a changed file held, prunes what a vanished file held, and reports
every file (`indexed`, `unchanged`, `failed`, `skipped`) as it goes, for progress bars. One bad file never
stops the others. A document with instruction-like sentences (a planted prompt injection) is flagged.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.components import Components
from app.errors import InputError
from app.guardrails.injection import injection_sentences
from app.settings import Settings
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
from rag.indexing import WRITE_GROUP_CHUNKS, Indexer

# (path to read, logical source name or None, a problem found before reading or None)
FileJob = tuple[Path, str | None, str | None]


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)  # one per file, or per page of a crawled site
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sites: list[dict[str, Any]] = field(default_factory=list)  # one crawl summary per site crawled

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
        out = {"files": [f.to_dict() for f in self.files], "pruned": self.pruned, "summary": self.summary}
        return out | ({"sites": self.sites} if self.sites else {})

    def merge(self, other: IngestReport) -> None:
        """Add another run's results (files and sites ingested in one command)."""
        self.files += other.files
        self.pruned += other.pruned
        self.sites += other.sites
        self.seconds += other.seconds


@dataclass
class IngestProgress:
    """Where a running ingest is, for a progress bar: reported after each file is read and each write."""

    files_done: int
    files_total: int
    documents: int
    chunks: int
    current: str = ""


def labels(collection: str, audience: str) -> tuple[str, str]:
    try:
        return check_label("collection", collection), check_label("audience", audience)
    except ValueError as exc:
        raise InputError(str(exc)) from None


class IngestRun:
    """One ingest in progress: files (or crawled pages) read but not yet written wait in `pending` so writes
    stay large; `finish` reports a file that needs no write, `add` one whose documents are to be written."""

    def __init__(self, indexer: Indexer, delete: Callable[[list[str]], Any], total: int,
                 on_file: Callable[[FileResult], None] | None, on_progress: Callable[[IngestProgress], None] | None):  # fmt: skip
        self.indexer = indexer
        self.delete = delete
        self.total = total
        self.on_file = on_file
        self.on_progress = on_progress
        self.report = IngestReport()
        self.pending: list[tuple[FileResult, list[Document], set[str]]] = []
        self.pending_chunks = 0
        self.documents = 0
        self.chunks = 0

    def finish(self, result: FileResult) -> None:
        self.report.files.append(result)
        if self.on_file:
            self.on_file(result)
        if self.on_progress:
            self.on_progress(IngestProgress(len(self.report.files), self.total, self.documents, self.chunks, result.path))

    def add(self, result: FileResult, documents: list[Document], stale: set[str]) -> None:
        self.pending.append((result, documents, stale))
        self.pending_chunks += sum(len(d.chunks) for d in documents)
        if self.pending_chunks >= WRITE_GROUP_CHUNKS:
            self.flush()

    def flush(self) -> None:
        """Write every pending document, then report each pending file."""
        outcomes = {o.doc_id: o for o in self.indexer.index([d for _, docs, _ in self.pending for d in docs])}
        for result, docs, stale in self.pending:
            mine = [outcomes[d.doc_id] for d in docs]
            result.doc_ids = [o.doc_id for o in mine]
            result.chunks = sum(o.chunks for o in mine)
            failed = [o for o in mine if o.status == FAILED]
            if failed:  # the store refused some documents (Elasticsearch bulk errors): the file failed
                reasons = "; ".join(f"{o.doc_id}: {o.error}" for o in failed[:3]) + (" …" if len(failed) > 3 else "")
                result.status = FAILED
                result.error = f"{len(failed)} of {len(mine)} documents not stored ({reasons})"
            else:
                if stale:  # documents this file held before and holds no more
                    self.delete(sorted(stale))
                written = [o for o in mine if o.status == INDEXED]
                result.status = INDEXED if stale or written else UNCHANGED
                if result.status == INDEXED:
                    self.documents += len(written)
                    self.chunks += sum(o.chunks for o in written)
            self.finish(result)
        self.pending.clear()
        self.pending_chunks = 0


def limits_from(settings: Settings) -> Limits:
    """The file limits KEFU_MAX_FILE_MB and friends set, for every file Kefu reads."""
    i = settings.ingest
    return Limits(
        max_file_mb=i.max_file_mb,
        parse_timeout_s=i.parse_timeout,
        parse_memory_mb=i.parse_memory_mb,
        max_zip_entries=i.max_zip_entries,
        max_unzipped_mb=i.max_unzipped_mb,
        max_zip_ratio=i.max_zip_ratio,
        ocr_timeout_s=i.ocr_timeout,
        ocr_memory_mb=i.ocr_memory_mb,
        ocr_max_megapixels=i.ocr_max_megapixels,
    )


def flag_instructions(doc: Document) -> None:
    """Mark a document holding sentences that give the assistant orders (planted instructions, `app.guardrails.injection`):
    admins see the count in `kefu docs list` and the knowledge-base page; answers never quote those sentences."""
    found = len(injection_sentences(doc.text))
    if found:
        doc.metadata["instruction_like"] = found


class Ingestion:
    def __init__(self, components: Components):
        self.c = components

    def file_loader(self) -> FileLoader:
        i = self.c.settings.ingest
        limits = limits_from(self.c.settings)
        embedder = self.c.embedder
        chunking = ChunkingOptions(
            count_tokens=embedder.count_tokens, max_tokens=min(i.chunk_tokens, embedder.max_tokens), overlap=i.chunk_overlap
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
        """Index files and folders into a collection, for an audience.

        A changed file replaces its documents (and drops those it no longer holds); an unchanged one writes
        nothing. With prune, documents whose files under these paths are gone are deleted too.
        """
        chosen = labels(collection, audience)
        roots = [Path(p) for p in paths]
        jobs: list[FileJob] = [(path, None, problem) for path, problem in discover(roots)]
        return self._run(jobs, chosen, on_file, on_progress, prune_roots=roots if prune else None)

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
        chosen = labels(collection, audience)
        folder = self.c.settings.core.home / "uploads"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        limit_mb = self.c.settings.ingest.max_file_mb
        jobs: list[FileJob] = []
        for name, data in uploads:
            label = "upload/" + safe_upload_name(name)
            if not supported(label):
                jobs.append((Path(label), None, None))  # reported as skipped; nothing is written
                continue
            if len(data) > limit_mb * 1024 * 1024:
                jobs.append((Path(label), None, f"{label} is larger than {limit_mb} MB (KEFU_MAX_FILE_MB)"))
                continue
            stored = folder / (hashlib.sha1(label.encode("utf-8")).hexdigest()[:20] + Path(label).suffix.lower())
            _write_owner_only(stored, data)
            jobs.append((stored, label, None))
        return self._run(jobs, chosen, on_file, on_progress)

    def _run(
        self,
        jobs: list[FileJob],
        chosen: tuple[str, str],
        on_file: Callable[[FileResult], None] | None,
        on_progress: Callable[[IngestProgress], None] | None,
        prune_roots: list[Path] | None = None,
    ) -> IngestReport:
        started = time.perf_counter()
        store = self.c.store
        run = IngestRun(Indexer(store, self.c.spaces, self.c.analyzer), store.delete_documents, len(jobs), on_file, on_progress)
        by_path = self._documents_by_path()
        with self.file_loader() as loader:
            for path, source, problem in jobs:
                label = source or str(path)
                if problem is not None:
                    run.finish(FileResult(label, FAILED, error=problem))
                elif not supported(source or path):
                    run.finish(FileResult(label, SKIPPED, error=f"unsupported file type {Path(label).suffix or '(none)'!r}"))
                else:
                    try:
                        documents = loader.load(path, source)
                    except LoadError as exc:
                        run.finish(FileResult(label, FAILED, error=str(exc)))
                        continue
                    for doc in documents:
                        doc.collection, doc.audience = chosen
                        flag_instructions(doc)
                    stale = by_path.get(str(path.resolve()), set()) - {d.doc_id for d in documents}
                    run.add(FileResult(label, INDEXED), documents, stale)
            run.flush()
        if prune_roots is not None:
            run.report.pruned = self._prune(prune_roots, by_path)
        run.report.seconds = time.perf_counter() - started
        self.c.forget_catalogue()
        return run.report

    def _documents_by_path(self) -> dict[str, set[str]]:
        by_path: dict[str, set[str]] = {}
        for doc in self.c.store.list_documents():
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
            self.c.store.delete_documents(gone)
        return gone


def _write_owner_only(path: Path, data: bytes) -> None:
    """An uploaded file, readable and writable by Kefu's user only (uploads may hold anything a company has)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)  # a file uploaded before under the same name keeps its old mode otherwise
