"""The sentence-transformers backend: any sentence-transformers model name (from the local Hugging Face
cache; Kefu never downloads) or model folder, in torch.

It is the general path (bge-m3, multilingual-e5-base, ...) and the bulk path of the default model: on CPUs
with AVX512-BF16 or AMX it embeds in bfloat16, about twice as fast as float32 with vectors that agree to
~1e-3 cosine. Importing it costs seconds (torch, transformers), so it is imported only when a model is
loaded. Models trained with query/passage prompts (E5, BGE) get them from their own configuration or from
the prefixes given in `EmbeddingConfig`. Knows nothing about stores or documents.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.embeddings import EmbeddingConfig, resolve_model, token_budget_batches
from rag.errors import EmbeddingError


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def pick_dtype(requested: str, device: str):
    """float32, or half precision where the hardware computes it natively (CUDA; CPUs with AVX512-BF16/AMX).

    On such CPUs bfloat16 embeds about twice as fast with vectors that agree with float32 to ~1e-3 cosine.
    """
    import torch

    choices = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if requested != "auto":
        if requested not in choices:
            raise EmbeddingError(f"unknown embedding dtype {requested!r}: choose auto, {', '.join(choices)}")
        return choices[requested]
    if device.startswith("cuda"):
        return torch.float16
    return torch.bfloat16 if _cpu_has_bf16() else torch.float32


class SentenceTransformerEmbedder:
    """An `Embedder` over a sentence-transformers model, loaded on first use."""

    def __init__(self, config: EmbeddingConfig, setting: str = "KEFU_EMBEDDING_MODEL"):
        self.config = config
        self.name = config.model
        self.setting = setting  # named in errors, so the user knows which setting to fix
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return "model" in self.__dict__

    @cached_property
    def model(self):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a base dependency
            raise EmbeddingError(f"sentence-transformers is not installed ({exc}): pip install sentence-transformers")
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bars in CLI output
        device = self.config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        path = resolve_model(self.config.model)
        local = Path(path).exists()
        try:
            model = SentenceTransformer(
                path,
                device=device,
                model_kwargs={"dtype": pick_dtype(self.config.dtype, device)},
                local_files_only=local or os.environ.get("HF_HUB_OFFLINE") == "1",
            )
        except EmbeddingError:
            raise
        except Exception as exc:
            hint = (
                f"download it on a connected machine with `hf download {path}` and copy the cache, or set "
                f"{self.setting} to a local folder"
                if not local
                else "check that the folder holds a complete sentence-transformers model"
            )
            reason = str(exc).strip().rstrip(".")
            raise EmbeddingError(
                f"cannot load embedding model {self.config.model!r} ({self.setting}): {reason}. To fix: {hint}."
            ) from exc
        return model

    @property
    def dimension(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = getter()
        if not dim:
            dim = int(self.model.encode(["x"], convert_to_numpy=True).shape[1])
        return int(dim)

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length) - 2  # [CLS] and [SEP] (or <s> and </s>)

    def _prompt_for(self, kind: str, prefix: str) -> dict:
        if prefix:
            return {"prompt": prefix}
        if kind in (getattr(self.model, "prompts", None) or {}):
            return {"prompt_name": kind}
        return {}

    def _encode(self, texts: Sequence[str], kind: str, prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with self._lock:  # one forward pass at a time: torch already uses every core for each
            for batch in token_budget_batches(self.count_tokens(texts), self.max_tokens, self.config.batch_size):
                vectors = self.model.encode(
                    [texts[i] for i in batch],
                    batch_size=len(batch),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                    **self._prompt_for(kind, prefix),
                )
                out[batch] = vectors
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "document", self.config.document_prefix)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query", self.config.query_prefix)

    @cached_property
    def _raw_tokenizer(self):
        """The Rust tokenizer without the padding and truncation the model's config may switch on, or None."""
        backend = getattr(self.model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        from tokenizers import Tokenizer

        raw = Tokenizer.from_str(backend.to_str())
        raw.no_padding()
        raw.no_truncation()
        return raw

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        if self._raw_tokenizer is not None:  # batched in Rust, and no over-length warnings
            return [e.ids for e in self._raw_tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        return self.model.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self._token_ids(texts)] if texts else []

    def readable(self, texts: Sequence[str]) -> list[float]:
        unk = getattr(self.model.tokenizer, "unk_token_id", None)
        if not texts:
            return []
        if unk is None:
            return [1.0] * len(texts)
        return [1.0 - (ids.count(unk) / len(ids)) if ids else 1.0 for ids in self._token_ids(texts)]
