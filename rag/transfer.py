"""Moving a knowledge store's contents between stores: `kefu index export PATH` writes JSONL, `kefu index import
PATH` reads it into whatever store KEFU_STORE names (the way to move the embedded SQLite store into
Elasticsearch without re-embedding anything).

The file: a header line `{"format": "kefu-index", "version": 2, "index_spec": {...}}`, then one line per
document, `{"document": {...}, "chunks": [{..., "terms": "...", "vectors": {model: [floats]}}]}` (a chunk lists
only the models that gave it a vector). Version 1 files (one `"embedding": [floats] | null` per chunk, made by
the spec's one model) are still read. An import reads the whole file once to check it before writing anything, so a
broken file changes nothing; it then writes documents in groups, skipping those already stored with the same
content hash (importing twice writes nothing the second time). Works over any `KnowledgeStore`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ingest.documents import check_label
from rag.errors import FormatError
from rag.store import ChunkRecord, DocumentRecord, IndexSpec, KnowledgeStore

FORMAT = "kefu-index"
VERSION = 2
READABLE_VERSIONS = (1, 2)
WRITE_GROUP_CHUNKS = 512

_DOC_FIELDS = {"doc_id": str, "source": str, "title": str, "kind": str, "language": str, "content_hash": str,
               "metadata": dict, "collection": str, "audience": str}  # fmt: skip
_CHUNK_FIELDS = {"chunk_id": str, "ord": int, "text": str, "terms": str, "section": str, "language": str,
                 "metadata": dict}  # fmt: skip


@dataclass
class ImportReport:
    documents: int = 0
    chunks: int = 0
    indexed: int = 0
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "failed": [{"doc_id": d, "error": e} for d, e in self.failed.items()],
        }


# -- writing --------------------------------------------------------------------------------------------------


def document_line(doc: DocumentRecord, chunks: list[ChunkRecord]) -> dict[str, Any]:
    return {
        "document": {name: getattr(doc, name) for name in _DOC_FIELDS},
        "chunks": [
            {
                **{name: getattr(c, name) for name in _CHUNK_FIELDS},
                "page": c.page,
                "vectors": {
                    model: np.asarray(v, np.float32).astype(float).tolist() for model, v in c.vectors.items() if np.any(v)
                },
            }
            for c in chunks
        ],
    }


def export_store(store: KnowledgeStore, out: TextIO) -> tuple[int, int]:
    """Write every document of the store; returns (documents, chunks)."""
    spec = store.index_spec()
    out.write(json.dumps({"format": FORMAT, "version": VERSION, "index_spec": spec.to_dict() if spec else None}) + "\n")
    documents = chunks = 0
    for doc, doc_chunks in store.export_documents():
        out.write(json.dumps(document_line(doc, doc_chunks), ensure_ascii=False) + "\n")
        documents += 1
        chunks += len(doc_chunks)
    return documents, chunks


# -- reading --------------------------------------------------------------------------------------------------


def _fail(name: str, number: int, problem: str) -> FormatError:
    return FormatError(f"{name} line {number}: {problem}; nothing was imported")


def _fields(value: Any, spec: dict[str, type], what: str, name: str, number: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(name, number, f"{what} is not a JSON object")
    for key, kind in spec.items():
        if not isinstance(value.get(key), kind) or (kind is int and isinstance(value.get(key), bool)):
            raise _fail(name, number, f"{what} field {key!r} is missing or not a {kind.__name__}")
    return value


def parse_header(line: str, name: str) -> IndexSpec | None:
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FormatError(f"{name} is not a Kefu index export (its first line must say \"format\": \"{FORMAT}\")")
    if header.get("version") not in READABLE_VERSIONS:
        raise FormatError(
            f"{name} is export version {header.get('version')!r}; this Kefu reads versions "
            + ", ".join(map(str, READABLE_VERSIONS))
        )
    spec = header.get("index_spec")
    if spec is None:
        return None
    try:
        parsed = IndexSpec.from_dict(spec)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise FormatError(f"{name} line 1: the index_spec is incomplete") from None
    if (header["version"] == 1) != (parsed.layout == 1):
        raise FormatError(f"{name} line 1: the index_spec does not fit export version {header['version']}")
    return parsed


def _vectors(c: dict[str, Any], spec: IndexSpec, name: str, number: int) -> dict[str, np.ndarray]:
    """A chunk's vectors, each checked against its model's dimensions in the spec."""
    if spec.layout == 1:  # one "embedding" (or null) from the spec's one model
        raw = {} if c.get("embedding") is None else {spec.models[0]: c.get("embedding")}
    else:
        raw = c.get("vectors")
        if not isinstance(raw, dict):
            raise _fail(name, number, f"chunk {c['chunk_id']!r} has no `vectors` object")
    out = {}
    for model, vector in raw.items():
        space = spec.space(model)
        if space is None:
            raise _fail(name, number, f"chunk {c['chunk_id']!r} has a vector of {model!r}, which the index_spec does not list")
        if not (isinstance(vector, list) and len(vector) == space.dimension and all(isinstance(x, (int, float)) for x in vector)):
            raise _fail(name, number, f"chunk {c['chunk_id']!r} has no vector of {space.dimension} numbers for {model!r}")
        out[model] = np.asarray(vector, np.float32)
    return out


def parse_document(line: str, name: str, number: int, spec: IndexSpec) -> tuple[DocumentRecord, list[ChunkRecord]]:
    """One document line, checked field by field; FormatError naming the line otherwise."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _fail(name, number, f"not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise _fail(name, number, "not a JSON object")
    d = _fields(value.get("document"), _DOC_FIELDS, "the document", name, number)
    try:
        check_label("collection", d["collection"])
        check_label("audience", d["audience"])
    except ValueError as exc:
        raise _fail(name, number, str(exc)) from None
    doc = DocumentRecord(**{key: d[key] for key in _DOC_FIELDS})
    if not isinstance(value.get("chunks"), list) or not value["chunks"]:
        raise _fail(name, number, "the document has no chunks")
    chunks = []
    for c in value["chunks"]:
        c = _fields(c, _CHUNK_FIELDS, "a chunk", name, number)
        vectors = _vectors(c, spec, name, number)
        if not (c.get("page") is None or isinstance(c["page"], int)):
            raise _fail(name, number, f"chunk {c['chunk_id']!r} has a page that is not a number")
        chunks.append(ChunkRecord(c["chunk_id"], doc.doc_id, c["ord"], c["text"], c["terms"], vectors,
                                  section=c["section"], page=c.get("page"), language=c["language"],
                                  metadata=c["metadata"]))  # fmt: skip
    if len({c.chunk_id for c in chunks}) != len(chunks):
        raise _fail(name, number, "two chunks share an id")
    return doc, chunks


def read_export(path: Path) -> tuple[IndexSpec | None, Iterator[tuple[DocumentRecord, list[ChunkRecord]]]]:
    """The file's index spec and its documents, read lazily (each line checked as it is read)."""
    name = path.name
    try:
        handle = path.open(encoding="utf-8")
        first = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    spec = parse_header(first, name)

    def documents() -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
        seen: set[str] = set()
        with handle:
            for number, line in enumerate(handle, start=2):
                if not line.strip():
                    continue
                if spec is None:
                    raise _fail(name, number, "the header has no index_spec, so the file cannot hold documents")
                doc, chunks = parse_document(line, name, number, spec)
                if doc.doc_id in seen:
                    raise _fail(name, number, f"document {doc.doc_id!r} appears twice")
                seen.add(doc.doc_id)
                yield doc, chunks

    return spec, documents()


def import_file(store: KnowledgeStore, path: Path, expected: IndexSpec) -> ImportReport:
    """Check the whole file, then write it into the store. `expected` is the configured embedding model and
    analysis: a file built with others would mix vectors the retriever cannot compare."""
    spec, documents = read_export(path)
    report = ImportReport()
    if spec is not None and IndexSpec(spec.analysis, spec.spaces) != expected:
        raise FormatError(
            f"{path.name} was exported with {spec.describe()}, but {expected.describe()} is configured: set "
            "KEFU_EMBEDDING_MODEL, KEFU_MULTILINGUAL_MODEL, KEFU_MULTILINGUAL_SCOPE (and KEFU_ZH_ANALYZER, "
            "KEFU_USER_DICT) as they were where it was exported"
        )
    for doc, chunks in documents:  # first pass: every line is checked before anything is written
        report.documents += 1
        report.chunks += len(chunks)
    if spec is None:
        return report
    store.claim(expected)
    _, documents = read_export(path)
    _write_groups(store, documents, report)
    return report


def _write_groups(store: KnowledgeStore, documents: Iterable[tuple[DocumentRecord, list[ChunkRecord]]], report: ImportReport) -> None:
    group: list[tuple[DocumentRecord, list[ChunkRecord]]] = []
    size = 0

    def flush() -> None:
        stored = store.content_hashes([d.doc_id for d, _ in group])
        changed = [(d, c) for d, c in group if stored.get(d.doc_id) != d.content_hash]
        report.unchanged += len(group) - len(changed)
        failures = store.replace_documents(changed) if changed else {}
        report.failed.update(failures)
        report.indexed += len(changed) - len(failures)

    for item in documents:
        group.append(item)
        size += len(item[1])
        if size >= WRITE_GROUP_CHUNKS:
            flush()
            group, size = [], 0
    if group:
        flush()
