"""The one store factory: `KEFU_STORE` in, a `KnowledgeStore` out.

Kept apart from `rag.store` (the protocol and its records), which the backends import; a backend's module is
imported only when it is chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import StoreError
from rag.store import KnowledgeStore

if TYPE_CHECKING:
    from rag.elasticsearch.config import ElasticsearchConfig

STORES = ("sqlite", "elasticsearch")


def make_store(kind: str, home: Path, elasticsearch: ElasticsearchConfig | None = None) -> KnowledgeStore:
    """The store named by KEFU_STORE: `sqlite` (a file under `home`) or `elasticsearch` (a cluster)."""
    if kind == "sqlite":
        from rag.sqlite_store import SQLiteStore

        return SQLiteStore(home / "knowledge.sqlite3")
    if kind == "elasticsearch":
        from rag.elasticsearch.config import ElasticsearchConfig
        from rag.elasticsearch.store import ElasticsearchStore

        return ElasticsearchStore(elasticsearch or ElasticsearchConfig())
    raise StoreError(f"unknown store {kind!r}: KEFU_STORE must be one of {', '.join(STORES)}")
