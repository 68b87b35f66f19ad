"""Server-sent events: how streamed answers travel (`data: <json>` lines, each event ended by a blank line,
and `data: [DONE]` last, as OpenAI's streaming API does).

A route pulls the answer's first piece before it answers, so that a problem found at the start (bad input, a
rate limit, a full model queue) still gets its status code; a failure after the stream began can only be told
inside it, as an `{"error": ...}` event, which the `openai` client raises as an APIError.

A client that leaves mid-answer (closes the connection) is noticed at once, whether or not a piece is being
sent: the answer's pieces stop being pulled, and the reply is closed in a worker thread as soon as the piece in
hand is done (`Reply.close`): the model stops writing, and the turn's audit record is written then, outside
any other transaction. Left to the garbage collector instead, that record would be written at a random moment
in a random thread, and on SQLite could wait out the busy timeout behind a transaction of that same thread,
holding up every request after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Generator, Iterator
from typing import Any

import anyio
from fastapi.responses import StreamingResponse

from api.errors import error_body, status_of
from app.answering.answerer import Reply

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


class EventStream(StreamingResponse):
    """Server-sent events, stopped the moment the client leaves: a generator over a reply (both closed, in a
    worker thread), or an async generator (closed where it waits)."""

    def __init__(self, events: Generator[str, None, None] | AsyncGenerator[str, None], reply: Reply | None = None):
        super().__init__(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events, self._reply = events, reply

    async def __call__(self, scope, receive, send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def send_all() -> None:
                    try:
                        await self.stream_response(send)
                    except OSError:  # the client left while a piece was being written
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(send_all)
                await self.listen_for_disconnect(receive)  # returns when the client leaves (or the answer is done)
                group.cancel_scope.cancel()
        finally:
            # A piece being pulled in a worker thread is finished first (anyio does not abandon it), then:
            with anyio.CancelScope(shield=True):
                if isinstance(self._events, AsyncGenerator):
                    await self._events.aclose()
                else:
                    await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        self._events.close()
        if self._reply is not None:
            self._reply.close()


def stream(events: Generator[str, None, None] | AsyncGenerator[str, None], reply: Reply | None = None) -> StreamingResponse:
    """`events` as server-sent events, closed when the client leaves; with `reply` (the answer `events` reads),
    that too, so the model stops and the turn is recorded at once."""
    return EventStream(events, reply)
