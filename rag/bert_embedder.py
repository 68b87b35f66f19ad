"""The default model's backend: all-MiniLM-L6-v2 (or any BERT mean-pooling sentence-transformers folder),
with each job on the engine that measured faster for it.

- Questions, token counts, readability and small batches run on `rag.bert_numpy` (numpy, `tokenizers`,
  `safetensors`): a process that answers one question never imports torch (cold start: ~1 s instead of
  ~7-10 s for `import sentence_transformers`), and a question embeds in a few milliseconds.
- Bulk ingest (more than BULK_TOKENS tokens in one call, or any call once torch is loaded) runs on
  sentence-transformers, in bfloat16 where the CPU has it: 33 SciFact passages/s against numpy's 8 on the
  2-core development VM (float32 torch: 15).

Both engines compute the same model: numpy float32 agrees with sentence-transformers float32 to cosine
1.0000 and with its bfloat16 to ~0.998 (`tests/test_bert_numpy.py`; `bench/retrieval.py` shows the
ranking that mixing them gives). Knows nothing about stores or documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.bert_numpy import BertEncoder
from rag.embeddings import EmbeddingConfig
from rag.sentence_transformers_embedder import SentenceTransformerEmbedder

# Above this many tokens in one call, loading torch (~7 s on 2 cores) pays for itself: numpy embeds about
# 2,000 tokens/s there, torch in bfloat16 about four times as many.
BULK_TOKENS = 16_000


class BertEmbedder:
    """An `Embedder` over a BERT sentence-transformers folder: numpy for questions, torch for bulk.

    `bulk`: "auto" (as above), "numpy" (never torch) or "sentence-transformers" (torch for every passage)."""

    def __init__(self, config: EmbeddingConfig, folder: Path, bulk: str = "auto"):
        self.config = config
        self.name = config.model
        self.encoder = BertEncoder(folder)
        self.bulk = bulk
        self._torch = SentenceTransformerEmbedder(config)

    @property
    def dimension(self) -> int:
        return self.encoder.hidden

    @property
    def max_tokens(self) -> int:
        return self.encoder.max_length - 2  # [CLS] and [SEP]

    def _prefixed(self, texts: Sequence[str], prefix: str) -> list[str]:
        return [prefix + t for t in texts] if prefix else list(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(self._prefixed(texts, self.config.query_prefix), self.config.batch_size)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._use_torch(texts):
            return self._torch.embed_documents(texts)
        return self.encoder.encode(self._prefixed(texts, self.config.document_prefix), self.config.batch_size)

    def _use_torch(self, texts: Sequence[str]) -> bool:
        if self.bulk == "sentence-transformers" or (self.bulk == "auto" and self._torch.loaded):
            return True
        return self.bulk == "auto" and sum(self.count_tokens(texts)) > BULK_TOKENS

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.encoder.token_ids(texts, truncate=False)] if texts else []

    @cached_property
    def _unk(self) -> int | None:
        return self.encoder.unk_id

    def readable(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        if self._unk is None:
            return [1.0] * len(texts)
        ids = self.encoder.token_ids(texts, truncate=False)
        return [1.0 - (x.count(self._unk) / len(x)) if x else 1.0 for x in ids]
