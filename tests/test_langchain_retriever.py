"""The LangChain adapter, with real langchain-core over the real retriever on the ingested sample knowledge base."""

import asyncio
import sys

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from app.services import KefuService
from rag.store import SearchFilter


@pytest.fixture
def service(use_kb):
    s = KefuService()
    yield s
    s.close()


def test_it_is_a_langchain_retriever_returning_kefu_hits_as_documents(service):
    from rag.langchain_retriever import KefuRetriever

    retriever = KefuRetriever.from_service(service, k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("How long do I have to return an item?")
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert top.metadata["source"].endswith("policies/en/returns.md")
    assert "30 days" in top.page_content
    assert top.id == top.metadata["chunk_id"] and top.metadata["audience"] == "public"
    assert set(top.metadata) >= {"doc_id", "title", "score", "collection", "language", "similarity"}
    # the same hits, in the same order, as Kefu's own search
    assert [d.id for d in docs] == [h.chunk.chunk_id for h in service.search("How long do I have to return an item?", k=3)]


def test_it_runs_in_a_chain_in_batches_and_async(service):
    from rag.langchain_retriever import KefuRetriever

    retriever = KefuRetriever.from_service(service, k=2, filters=SearchFilter(languages=("zh",)))
    chain = retriever | RunnableLambda(lambda docs: "\n\n".join(d.page_content for d in docs))
    context = chain.invoke("我有多长时间可以退货？")
    assert "30 天" in context
    batched = retriever.batch(["退款多久到账", "可以货到付款吗"])
    assert all(d.metadata["language"] == "zh" for docs in batched for d in docs)
    async_docs = asyncio.run(retriever.ainvoke("退货"))
    assert async_docs and all(d.metadata["language"] == "zh" for d in async_docs)


def test_bad_mode_is_refused():
    from pydantic import ValidationError

    from rag.langchain_retriever import KefuRetriever
    from rag.retrieval import HybridRetriever

    with pytest.raises(ValidationError, match="unknown search mode 'fuzzy'"):
        KefuRetriever(retriever=HybridRetriever.__new__(HybridRetriever), mode="fuzzy")


def test_without_langchain_core_the_error_says_what_to_install(monkeypatch):
    from rag.errors import RagError

    monkeypatch.delitem(sys.modules, "rag.langchain_retriever", raising=False)
    monkeypatch.setitem(sys.modules, "langchain_core.retrievers", None)
    with pytest.raises(RagError, match=r"pip install 'kefu\[langchain\]'"):
        import rag.langchain_retriever  # noqa: F401
