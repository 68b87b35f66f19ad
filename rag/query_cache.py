"""An embedder that remembers the vectors of recent queries: within one turn the same customer message is
embedded for its intent and for retrieval, and popular questions repeat across turns. A thin wrapper around
any `Embedder`; documents are never cached (an ingest embeds each once anyway). Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from rag.embeddings import Embedder


class QueryCachingEmbedder:
    def __init__(self, inner: Embedder, size: int = 1024):
        self.inner = inner
        self.name = inner.name
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __getattr__(self, attribute: str):
        return getattr(self.inner, attribute)  # dimension, max_tokens, count_tokens, readable, embed_documents, ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for t in known:
                self._vectors.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = self.inner.embed_queries(missing)
            with self._lock:
                for text, vector in zip(missing, fresh):
                    known[text] = vector
                    self._vectors[text] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        if not texts:
            return self.inner.embed_queries([])
        return np.stack([known[t] for t in texts]).astype(np.float32, copy=False)
