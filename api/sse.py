"""Server-sent events: how streamed answers travel (`data: <json>` lines, each event ended by a blank line,
and `data: [DONE]` last, as OpenAI's streaming API does).

A route pulls the answer's first piece before it answers, so that a problem found at the start (bad input, a
rate limit, a full model queue) still gets its status code; a failure after the stream began can only be told
inside it, as an `{"error": ...}` event, which the `openai` client raises as an APIError.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from fastapi.responses import StreamingResponse

from api.errors import error_body, status_of

log = logging.getLogger("kefu.api")
DONE = "data: [DONE]\n\n"


def event(value: Any) -> str:
    return f"data: {json.dumps(value, ensure_ascii=False)}\n\n"


def first_and_rest(pieces: Iterator[str]) -> tuple[str | None, Iterator[str]]:
    """The first piece (raising whatever starting the answer raised) and an iterator over the others."""
    iterator = iter(pieces)
    return next(iterator, None), iterator


def error_event(exc: BaseException, rid: str) -> str:
    status = status_of(exc)
    message = str(exc) if status < 500 else f"internal error (request id {rid})"
    if status == 500:
        log.error(json.dumps({"request_id": rid, "error": f"{type(exc).__name__} while streaming"}))
    return event(error_body(status, message))


def stream(events: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
