"""Errors raised by `rag/`. Each message says what happened and how to fix it; `app/errors.py` shows them
to users as they are."""


class RagError(Exception):
    """A retrieval-layer failure a user can act on."""


class StoreError(RagError):
    """The knowledge store cannot be opened, read or written."""


class IndexMismatchError(StoreError):
    """The store was built with another embedding model or text analysis than the one configured."""


class EmbeddingError(RagError):
    """The embedding model cannot be loaded or run."""


class FormatError(RagError):
    """A file given to Kefu (e.g. an index export) is not in the format Kefu expects."""
