"""Ingest: files in, documents and chunks out (loaders, limits, chunking); websites too (`ingest.crawl`)."""
