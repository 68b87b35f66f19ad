"""User-facing errors. Every message says what happened and how to fix it.

`KefuError` is raised by `app/`; `rag/`, `ingest/` and `inference/` raise their own (`RagError`, `LoadError`,
`InferenceError`) with messages of the same kind. `USER_ERRORS` is what the CLI and the UI show as a one-line
message instead of a traceback; with KEFU_DEBUG=1 (or under tests) they re-raise. `redact` takes passwords out
of URLs in any text shown or logged.
"""

from __future__ import annotations

import logging
import os
import re
import uuid

from inference.errors import GeneratorBusy, InferenceError
from ingest.errors import LoadError
from rag.errors import RagError


class KefuError(Exception):
    """A failure the user can act on; the message is shown as is."""


class ConfigError(KefuError):
    """A setting has a value Kefu cannot use."""


class ClientError(KefuError):
    """A problem with what the caller sent or may do: its message may be shown to anyone, customers included."""


class NotFoundError(ClientError):
    """A document, session or file named by the user does not exist."""


class InputError(ClientError):
    """A file or argument the user gave is malformed."""


class RateLimited(ClientError):
    """Too many requests from one session or client (HTTP 429); `retry_after` seconds until the next is allowed."""

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


# The language model's request queue is full (HTTP 503 with Retry-After): raised in `inference`, named here so front
# ends need nothing but `app`.
Busy = GeneratorBusy

USER_ERRORS: tuple[type[Exception], ...] = (KefuError, RagError, LoadError, InferenceError)


_URL_PASSWORD_RE = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)(?P<secret>[^\s@/'\"]+)@")


def redact(text: str) -> str:
    """`text` with the password of every URL in it (scheme://user:password@host) replaced by ***: what any
    message, log line or printed setting goes through."""
    return _URL_PASSWORD_RE.sub(lambda m: m.group("head") + "***@", text)


def debug_enabled() -> bool:
    """Re-raise instead of showing a message: KEFU_DEBUG=1, or running under pytest."""
    return os.environ.get("KEFU_DEBUG", "").lower() in ("1", "true", "yes") or "PYTEST_CURRENT_TEST" in os.environ


GENERIC_MESSAGE = {
    "en": "Sorry, something went wrong on our side. Please try again in a moment (reference {ref}).",
    "zh": "抱歉，系统出了点问题，请稍后再试（参考编号 {ref}）。",
}


def customer_message(exc: BaseException, language: str = "en") -> str:
    """What a customer may be told about an error: the message of a problem with their own input, or a
    generic apology with a reference whose details (redacted) go to the log. Never a setting, a path, a
    database address or a stack trace."""

    if isinstance(exc, ClientError):
        return str(exc)
    ref = uuid.uuid4().hex[:12]
    logging.getLogger("kefu.errors").error("request %s failed: %s: %s", ref, type(exc).__name__, redact(str(exc)))
    texts = GENERIC_MESSAGE
    return texts.get(language, texts["en"]).format(ref=ref)
