"""Files and folders in, chunked `Document`s out, with a status for every file.

`discover` expands the paths a user gives; `FileLoader` checks a file's size, parses it in the sandboxed
worker (`ingest.sandbox`) and chunks the result here, with the embedding model's token counter. Storing is
not done here: the caller hands the documents to `rag`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ingest.chunking import CountTokens, approximate_token_count, chunk_document
from ingest.documents import Document
from ingest.errors import LoadError
from ingest.limits import check_size
from ingest.loaders import LoadOptions
from ingest.registry import loader_for
from ingest.sandbox import ParserSandbox, parse_in_process

# Per-file outcomes, as reported by `kefu ingest --json`.
INDEXED = "indexed"
UNCHANGED = "unchanged"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass
class FileResult:
    path: str
    status: str
    doc_ids: list[str] = field(default_factory=list)
    chunks: int = 0
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "status": self.status,
            "doc_id": self.doc_ids[0] if len(self.doc_ids) == 1 else None,
            "documents": len(self.doc_ids),
            "chunks": self.chunks,
            "error": self.error,
        }


@dataclass
class ChunkingOptions:
    count_tokens: CountTokens = approximate_token_count
    max_tokens: int = 512
    overlap: int = 64


def discover(paths: Iterable[Path]) -> Iterator[tuple[Path, str | None]]:
    """Yield (file, None) for every file under the given paths, or (path, reason) for a path that is unusable.

    Folders are walked in sorted order; hidden files and folders (".git", ".DS_Store") are passed over.
    """
    for path in paths:
        if not path.exists():
            yield path, f"{path} does not exist"
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if child.is_file() and not any(part.startswith(".") for part in rel.parts):
                    yield child, None
        elif path.is_file():
            yield path, None
        else:
            yield path, f"{path} is not a regular file"


def supported(name: str | Path) -> bool:
    return loader_for(name) is not None


class FileLoader:
    """Reads and chunks files: parsing isolated in a worker process (or in-process with isolate=False)."""

    def __init__(self, chunking: ChunkingOptions, load_options: LoadOptions, isolate: bool = True):
        self.chunking = chunking
        self.load_options = load_options
        self._sandbox = ParserSandbox(load_options.limits) if isolate else None

    def __enter__(self) -> FileLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, path: Path, source: str | None = None, extension: str | None = None) -> list[Document]:
        """Parse and chunk one file (read as `extension` when given, else by its name); LoadError says why it
        cannot be indexed."""
        options = self.load_options if source is None else replace(self.load_options, source=source)
        if extension is not None:
            options = replace(options, extension=extension)
        name = options.name_for(path)
        try:
            check_size(path, options.limits)
        except OSError as exc:
            raise LoadError(f"{name} could not be read: {exc.strerror or exc}") from None
        if self._sandbox is not None:
            documents = self._sandbox.load(path, options)
        else:
            documents = parse_in_process(path, options)
        for doc in documents:
            doc.chunks = chunk_document(doc, self.chunking.count_tokens, self.chunking.max_tokens, self.chunking.overlap)
            if not doc.chunks:
                raise LoadError(f"{name} has no text to index")
        return documents

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()


_UNSAFE_NAME_RE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def safe_upload_name(name: str) -> str:
    """The display name of an uploaded file: its last path component, without control or path characters.
    It is shown in citations and identifies the document; it is never used as a path on disk."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE_NAME_RE.sub("_", base).strip(" .") or "upload"
    return base[:120]
