"""Managing the knowledge store as a whole: list and delete documents, counts, and index maintenance
(`rebuild` in place, `export` to a JSONL file, `import` from one). Works on whichever store KEFU_STORE names;
the file format is `rag.transfer`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.components import Components
from app.errors import InputError, NotFoundError, redact
from rag.indexing import index_spec
from rag.reembedding import rebuild_index
from rag.store import DocumentInfo
from rag.transfer import export_store, import_file


class KnowledgeBase:
    def __init__(self, components: Components):
        self.c = components

    def documents(self) -> list[DocumentInfo]:
        return self.c.store.list_documents()

    def delete(self, doc_ids: Sequence[str]) -> int:
        known = {d.doc_id for d in self.c.store.list_documents()}
        missing = [d for d in doc_ids if d not in known]
        if missing:
            raise NotFoundError(f"no document with id {', '.join(map(repr, missing))} (see `kefu docs list`)")
        deleted = self.c.store.delete_documents(doc_ids)
        self.c.forget_catalogue()
        return deleted

    def stats(self) -> dict[str, Any]:
        """The store's counts and facts; a URL in them is shown without its password."""
        return {k: redact(v) if isinstance(v, str) else v for k, v in self.c.store.stats().items()}

    def rebuild(self, on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Re-embed (and re-analyse) what the configured models and analysis need, or only compact the store when
        nothing changed; on_progress(documents done, documents in all). Searches keep the old index meanwhile."""

        result = rebuild_index(self.c.store, self.c.spaces, self.c.analyzer, on_progress)
        self.c.forget_index_check()
        self.c.forget_catalogue()
        return result

    def export(self, path: Path) -> dict[str, Any]:
        """Write every document, chunk, term and vector to a JSONL file (see rag.transfer)."""

        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("w", encoding="utf-8") as out:
                documents, chunks = export_store(self.c.store, out)
            partial.replace(path)  # a complete file or none: an interrupted export never looks finished
        except OSError as exc:
            raise InputError(f"cannot write the export {path}: {exc.strerror or exc}") from None
        finally:
            partial.unlink(missing_ok=True)
        return {"path": str(path), "documents": documents, "chunks": chunks, "store": self.c.store.stats()["store"]}

    def import_(self, path: Path) -> dict[str, Any]:
        """Read an export into the configured store; it must match the configured embedding model and analysis."""

        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"{path} does not exist (make one with `kefu index export PATH`)")
        report = import_file(self.c.store, path, index_spec(self.c.spaces, self.c.analyzer))
        self.c.forget_catalogue()
        return {"path": str(path), **report.to_dict(), "store": self.c.store.stats()["store"]}
