"""Generators: chat messages in, tokens out. Called by `app/` only; knows nothing about retrieval."""
