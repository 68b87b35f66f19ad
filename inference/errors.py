"""Errors from generation that a person can act on: each message says what happened and what to do.

`app.errors` shows these as one line in the CLI and the UI. Nothing here knows about settings names beyond
the `KEFU_*` variables it suggests.
"""

from __future__ import annotations


class InferenceError(Exception):
    """Loading or running a language model failed in a way the user can fix; the message says how."""


def install_hint(package: str) -> str:
    return f"pip install 'kefu[llm]' (or: pip install -c constraints.txt {package})"


class GeneratorBusy(InferenceError):
    """Too many requests are already waiting for the model (KEFU_LLM_QUEUE): try again in `retry_after` seconds
    (HTTP 503)."""

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after
