"""Answering one question: rewrite, retrieve, decide, write, check (stateless); the answer cache and batch answering."""
