"""A BERT sentence encoder in numpy: the forward pass of a sentence-transformers model made of a BERT encoder,
mean pooling and normalisation (all-MiniLM-L6-v2 and its kind), read straight from the model folder's
`model.safetensors` and `tokenizer.json`.

It exists for cold start: importing sentence-transformers pulls in torch, transformers' modeling code and
scikit-learn (6-10 s on two cores) to embed one short question, while numpy, `tokenizers` (Rust) and
`safetensors.numpy` import in a fraction of a second and a question takes a few milliseconds. The arithmetic
is BERT's, in float32: embeddings and LayerNorm, per layer self-attention (padding masked out), residual and
LayerNorm, an erf-GELU feed-forward, residual and LayerNorm; then the mean of the token vectors under the
attention mask, scaled to unit length. `tests/test_bert_numpy.py` holds it to sentence-transformers' vectors.

It knows nothing about stores, and only the folder layout of sentence-transformers models; `supports()` says
whether a folder is one it can run (anything else goes to sentence-transformers).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.errors import EmbeddingError

_POOLING = "1_Pooling/config.json"


def supports(folder: Path) -> bool:
    """Whether `folder` holds a model this engine runs: BERT weights in safetensors, a `tokenizer.json`, and
    mean pooling followed by normalisation."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
        modules = json.loads((folder / "modules.json").read_text())
        pooling = json.loads((folder / _POOLING).read_text())
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    return (
        config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act") == "gelu"
        and kinds == ["Transformer", "Pooling", "Normalize"]
        and bool(pooling.get("pooling_mode_mean_tokens"))
        and not any(v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
        and (folder / "model.safetensors").is_file()
        and (folder / "tokenizer.json").is_file()
    )


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function to within 1.5e-7 (Abramowitz and Stegun 7.1.26); numpy has none, and scipy is a
    slow import for one function."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(1 / math.sqrt(2)))).astype(np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class BertEncoder:
    """One model folder: tokenizer, weights (read on first use) and the forward pass. Thread-safe."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        try:
            self.config = json.loads((self.folder / "config.json").read_text())
            st_config = json.loads((self.folder / "sentence_bert_config.json").read_text())
        except (OSError, ValueError) as exc:
            raise EmbeddingError(f"cannot read the model configuration in {self.folder}: {exc}") from exc
        self.max_length = min(int(st_config.get("max_seq_length", 512)), int(self.config["max_position_embeddings"]))
        self.hidden = int(self.config["hidden_size"])
        self.heads = int(self.config["num_attention_heads"])
        self.layers = int(self.config["num_hidden_layers"])
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))
        self._lock = threading.Lock()

    @cached_property
    def tokenizer(self):
        """The Rust tokenizer with special tokens, truncated at the model's length, never padded."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_length)
        return tokenizer

    @cached_property
    def raw_tokenizer(self):
        """The same tokenizer without truncation, for counting tokens."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    @cached_property
    def unk_id(self) -> int | None:
        model = json.loads(self.raw_tokenizer.to_str()).get("model", {})
        token = model.get("unk_token")
        return self.raw_tokenizer.token_to_id(token) if token else None

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        try:
            raw = load_file(str(self.folder / "model.safetensors"))
        except Exception as exc:
            raise EmbeddingError(f"cannot read {self.folder / 'model.safetensors'}: {exc}") from exc
        prefix = "bert." if any(k.startswith("bert.") for k in raw) else ""
        weights = {k[len(prefix):]: np.asarray(v, dtype=np.float32) for k, v in raw.items() if k.startswith(prefix)}
        # Linear layers as (in, out) views, so a layer is one `x @ w + b` (BLAS reads the transpose in
        # place); q, k and v as one matrix.
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            attention = [weights.pop(f"{p}attention.self.{n}.weight") for n in ("query", "key", "value")]
            weights[f"{p}qkv.weight"] = np.concatenate(attention, axis=0).T
            weights[f"{p}qkv.bias"] = np.concatenate([weights.pop(f"{p}attention.self.{n}.bias") for n in ("query", "key", "value")])
            for name in ("attention.output.dense", "intermediate.dense", "output.dense"):
                weights[f"{p}{name}.weight"] = weights[f"{p}{name}.weight"].T
        return weights

    def token_ids(self, texts: Sequence[str], truncate: bool = True) -> list[list[int]]:
        """Token ids with [CLS]/[SEP] (truncated at the model's length), or without them, untruncated."""
        if truncate:
            return [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        return [e.ids for e in self.raw_tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length sentence vectors, float32, shape (len(texts), hidden). Texts are batched by length so
        little padding is computed."""
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        ids = self.token_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with self._lock:
            weights = self.weights
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                out[batch] = self._forward([ids[i] for i in batch], weights)
        return out

    def _forward(self, ids: list[list[int]], w: dict[str, np.ndarray]) -> np.ndarray:
        batch, length = len(ids), max(len(x) for x in ids)
        tokens = np.zeros((batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=np.float32)
        for row, x in enumerate(ids):
            tokens[row, : len(x)] = x
            mask[row, : len(x)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][tokens]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        heads, size = self.heads, self.hidden // self.heads
        # Padding keys get -inf-like scores, so no real token attends to them.
        key_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1 / math.sqrt(size))
        x = x.reshape(batch * length, self.hidden)  # 2-D activations: every linear layer is one BLAS call
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv = x @ w[f"{p}qkv.weight"] + w[f"{p}qkv.bias"]
            qkv = qkv.reshape(batch, length, 3, heads, size).transpose(2, 0, 3, 1, 4)  # (3, B, H, L, D)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)
            attended = context @ w[f"{p}attention.output.dense.weight"] + w[f"{p}attention.output.dense.bias"]
            x = _layer_norm(x + attended, w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"], self.eps)
            inner = _gelu(x @ w[f"{p}intermediate.dense.weight"] + w[f"{p}intermediate.dense.bias"])
            out = inner @ w[f"{p}output.dense.weight"] + w[f"{p}output.dense.bias"]
            x = _layer_norm(x + out, w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"], self.eps)
        x = x.reshape(batch, length, self.hidden)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
