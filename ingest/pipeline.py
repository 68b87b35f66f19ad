"""Files and folders in, chunked `Document`s out, with a status for every file.

`discover` expands the paths a user gives; `load_file` reads and chunks one file. Storing is not done
here: the caller hands the documents to `rag`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunking import CountTokens, approximate_token_count, chunk_document
from ingest.documents import Document
from ingest.loaders import LoadError, loader_for

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


def load_file(path: Path, options: ChunkingOptions) -> list[Document]:
    """Read and chunk one file. Raises LoadError (unreadable) or returns [] for an unsupported type."""
    loader = loader_for(path)
    if loader is None:
        return []
    try:
        documents = loader(path)
    except LoadError:
        raise
    except OSError as exc:
        raise LoadError(f"{path.name} could not be read: {exc.strerror or exc}") from None
    for doc in documents:
        doc.chunks = chunk_document(doc, options.count_tokens, options.max_tokens, options.overlap)
        if not doc.chunks:
            raise LoadError(f"{path.name} has no text to index")
    return documents


def supported(path: Path) -> bool:
    return loader_for(path) is not None
