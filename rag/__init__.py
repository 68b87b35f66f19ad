"""Retrieval: text analysis, embeddings, knowledge stores, hybrid search and fusion."""
