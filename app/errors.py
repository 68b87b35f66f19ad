"""User-facing errors. Every message says what happened and how to fix it.

`KefuError` is raised by `app/`; `rag/`, `ingest/` and `inference/` raise their own (`RagError`, `LoadError`,
`InferenceError`) with messages of the same kind. `USER_ERRORS` is what the CLI and the UI show as a one-line
message instead of a traceback; with KEFU_DEBUG=1 (or under tests) they re-raise.
"""

from __future__ import annotations

import os

from inference.errors import InferenceError
from ingest.errors import LoadError
from rag.errors import RagError


class KefuError(Exception):
    """A failure the user can act on; the message is shown as is."""


class ConfigError(KefuError):
    """A setting has a value Kefu cannot use."""


class NotFoundError(KefuError):
    """A document, session or file named by the user does not exist."""


class InputError(KefuError):
    """A file or argument the user gave is malformed."""


USER_ERRORS: tuple[type[Exception], ...] = (KefuError, RagError, LoadError, InferenceError)


def debug_enabled() -> bool:
    """Re-raise instead of showing a message: KEFU_DEBUG=1, or running under pytest."""
    return os.environ.get("KEFU_DEBUG", "").lower() in ("1", "true", "yes") or "PYTEST_CURRENT_TEST" in os.environ
