"""LangChain adapter: Kefu's hybrid retrieval as a `langchain_core` `BaseRetriever`, so it plugs into LangChain
chains (`retriever | format_docs | prompt | llm`) with Kefu's own analysis, fusion, filters and store, whichever
store KEFU_STORE names.

Each hit becomes a LangChain `Document`: the chunk's display text as `page_content`, its id as `id`, and
Kefu's fields (doc_id, title, source, section, page, language, collection, audience, score, ranks,
similarity) as metadata. Needs the optional `langchain-core` (`pip install 'kefu[langchain]'`); Kefu itself
never imports this module. Knows nothing about answers or sessions.
"""

from __future__ import annotations

from typing import Any

from rag.errors import RagError
from rag.retrieval import MODES, HybridRetriever, SearchHit
from rag.store import SearchFilter

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # pragma: no cover - exercised by a test that hides langchain_core
    raise RagError(
        "the LangChain adapter needs langchain-core: pip install 'kefu[langchain]' (or pip install 'langchain-core>=1,<2')"
    ) from exc
from pydantic import ConfigDict, field_validator


def to_document(hit: SearchHit) -> Document:
    metadata = {key: value for key, value in hit.to_dict().items() if key != "text"}
    metadata.update(collection=hit.chunk.collection, audience=hit.chunk.audience)
    return Document(page_content=hit.chunk.text, metadata=metadata, id=hit.chunk.chunk_id)


class KefuRetriever(BaseRetriever):
    """Kefu's `HybridRetriever` behind LangChain's retriever interface (invoke, batch, ainvoke, chains)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: HybridRetriever
    k: int = 5
    mode: str = "hybrid"
    filters: SearchFilter | None = None

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in MODES:
            raise ValueError(f"unknown search mode {value!r}: choose one of {', '.join(MODES)}")
        return value

    @classmethod
    def from_service(cls, service: Any, customer_facing: bool = True, **kwargs: Any) -> KefuRetriever:
        """From a `KefuService`: by default only the audiences customers may see (KEFU_ANSWER_AUDIENCES), like
        `kefu ask`; customer_facing=False searches everything, like `kefu search`."""
        return cls(retriever=service.retriever(customer_facing), **kwargs)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.retriever.search(query, k=self.k, mode=self.mode, filters=self.filters)
        return [to_document(hit) for hit in hits]
