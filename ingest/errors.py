"""The one error ingest raises for a file it cannot take; the message says why in words a person understands."""


class LoadError(Exception):
    """A file could not be read or was refused; the pipeline reports it as `failed` with this message."""
