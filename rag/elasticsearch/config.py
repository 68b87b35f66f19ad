"""What the Elasticsearch store connects to and how it lays out its index. Plain data: `app.settings` fills it
from KEFU_ES_* variables (secrets come only from the environment), `rag.store_factory.make_store` hands it over.
Knows nothing about HTTP or the client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import StoreError

DEFAULT_URL = "http://localhost:9200"
DEFAULT_INDEX = "kefu"
# Lowercase, no characters Elasticsearch forbids in index names, not starting with '-', '_', '+' or '.'.
_INDEX_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
_REPLICAS_RE = re.compile(r"\d+|\d+-(\d+|all)")


@dataclass(frozen=True)
class ElasticsearchConfig:
    url: str = DEFAULT_URL
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_certs: Path | None = None
    index: str = DEFAULT_INDEX  # the alias searches and writes go through; indices are `{index}-index-{stamp}`
    shards: int = 1
    replicas: str = "0-1"  # a count, or a range for auto_expand_replicas
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not _INDEX_RE.fullmatch(self.index):
            raise StoreError(
                f"KEFU_ES_INDEX={self.index!r} is not a usable index name: use 1 to 100 lowercase letters, digits, "
                "'-' or '_', starting with a letter or digit"
            )
        if not _REPLICAS_RE.fullmatch(self.replicas):
            raise StoreError(
                f"KEFU_ES_REPLICAS={self.replicas!r} is not a replica count: give a number (1) or a range (0-1, 0-all)"
            )
        if self.shards < 1:
            raise StoreError(f"KEFU_ES_SHARDS={self.shards} must be at least 1")
        if self.ca_certs is not None and not Path(self.ca_certs).is_file():
            raise StoreError(f"KEFU_ES_CA_CERTS={str(self.ca_certs)!r} is not a file: give the cluster's CA certificate")
        if (self.username is None) != (self.password is None):
            raise StoreError("set both KEFU_ES_USERNAME and KEFU_ES_PASSWORD for basic auth, or neither")

    @property
    def alias(self) -> str:
        return self.index

    @property
    def template(self) -> str:
        return f"{self.index}-template"

    @property
    def index_pattern(self) -> str:
        return f"{self.index}-index-*"

    @property
    def generation_index(self) -> str:
        """A one-row index holding the store's write counter (`ElasticsearchStore.generation`); apart from the
        alias's indices, so a rebuild's new index never restarts it."""
        return f"{self.index}-generation"

    def index_name(self, stamp: str) -> str:
        return f"{self.index}-index-{stamp}"

    @property
    def auth(self) -> str:
        """How Kefu authenticates, for messages (never the secret itself)."""
        if self.api_key:
            return "the API key in KEFU_ES_API_KEY"
        if self.username:
            return f"user {self.username!r} (KEFU_ES_USERNAME/KEFU_ES_PASSWORD)"
        return "no credentials"
