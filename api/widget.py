"""The website chat widget's side of the HTTP API: the script a site embeds (`/widget.js`, plain JS, its stylesheet
inside it and also at `/widget.css`) and the routes it calls under `/widget/v1`, for website visitors
(`app.access.visitors`), never for API keys.

| Route | Body | What |
|---|---|---|
| `POST /widget/v1/visitors` | `{"key"}` | a new visitor token for a page on one of the widget key's origins |
| `POST /widget/v1/ask` | `{"question", "session_id"}` | the answer as server-sent events: `{"delta"}`..., then `{"answer", "messages", "status", ...}` |
| `POST /widget/v1/conversation` | `{"session_id", "after"}` | the conversation as the visitor sees it (restores it after a reload) |
| `POST /widget/v1/events` | `{"session_id", "after"}` | server-sent events: the conversation's new messages and state as they happen (an agent's reply), for STREAM_SECONDS; the widget reconnects |
| `POST /widget/v1/handoff` | `{"session_id", "language"}` | ask for a person |
| `POST /widget/v1/feedback` | `{"message_id", "rating"}` | rate an answer or an agent's reply |

Every call is a POST, so browsers always send the page's Origin. Each needs an Origin the widget key names and
(all but the first) `Authorization: Bearer <visitor token>`: both are checked on every request, streams
included, and again on every poll of a live stream (`KefuService.visitor_principal`); the visitor may act only
on conversations it started (the gate). Live streams do not count towards KEFU_MAX_REQUESTS (`api.middleware`);
KEFU_WIDGET_STREAMS caps them per worker.

CORS (`WidgetCors`): a preflight is answered for an origin some active widget key names (a preflight carries no
token, so it cannot tell which key), and responses carry `Access-Control-Allow-Origin` for such origins only;
cookies are never allowed (the token travels in a header).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from app import metrics
from app.access.auth import AuthenticationError
from app.access.gate import Acting
from api import sse
from api.errors import error_response, request_id
from api.security import bearer, service

STATIC = Path(__file__).parent / "static"
PREFIX = "/widget/v1"
EVENTS_PATH = f"{PREFIX}/events"
STREAM_SECONDS = 25.0  # a live stream ends after this; the widget opens the next at once
POLL_SECONDS = 1.0  # how often a live stream looks for new messages
KEEP_ALIVE_SECONDS = 10.0
ORIGINS_SECONDS = 5.0  # how long a worker trusts its list of the widget keys' origins (CORS only)


def widget_script() -> tuple[str, str]:
    """(widget.js with its stylesheet inside, widget.css)."""
    css = (STATIC / "widget.css").read_text(encoding="utf-8")
    script = (STATIC / "widget.js").read_text(encoding="utf-8").replace('"__KEFU_CSS__"', json.dumps(css))
    return script, css


SCRIPT, STYLESHEET = widget_script()
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(tags=["widget"])


# -- the script -------------------------------------------------------------------------------------------


@router.get("/widget.js", summary="The website chat widget (embed with one <script> line)", include_in_schema=True)
def script() -> Response:
    return Response(SCRIPT, media_type="text/javascript; charset=utf-8", headers=ASSET_HEADERS)


@router.get("/widget.css", summary="The widget's stylesheet (for browsers without constructable stylesheets)")
def stylesheet() -> Response:
    return Response(STYLESHEET, media_type="text/css; charset=utf-8", headers=ASSET_HEADERS)


# -- who is asking ----------------------------------------------------------------------------------------


def origin_of(request: Request) -> str | None:
    return request.headers.get("origin")


def visitor_access(request: Request) -> Acting:
    """The service acting as the visitor whose token the request carries, on a page the key allows."""
    token = bearer(request)
    if not token:
        raise AuthenticationError("start a visitor first (POST /widget/v1/visitors) and send its token")
    who = service(request).visitor_principal(token, origin_of(request))
    return service(request).acting_as(who)


visitor = Depends(visitor_access)


class VisitorBody(BaseModel):
    key: str = Field(description="The site's widget key (data-kefu-key).", max_length=200)


class AskBody(BaseModel):
    question: str = Field(description="The visitor's message.")
    session_id: str | None = Field(None, description="Continue this conversation (one the visitor started); a new one when absent.")


class ConversationBody(BaseModel):
    session_id: str = Field(description="The visitor's conversation.")
    after: int = Field(0, ge=0, description="Only messages after this message id.")


class HandoffBody(BaseModel):
    session_id: str | None = Field(None, description="The visitor's conversation; a new one when absent.")
    language: Literal["en", "zh"] = "en"


class FeedbackBody(BaseModel):
    message_id: int
    rating: Literal["up", "down"]


# -- the routes -------------------------------------------------------------------------------------------


@router.post(f"{PREFIX}/visitors", summary="Start a website visitor (the widget's first call)")
def start_visitor(body: VisitorBody, request: Request) -> dict[str, str]:
    client = request.client.host if request.client else ""
    return service(request).widget_visitor(body.key, origin_of(request), client).to_dict()


def answered(access: Acting, answer) -> dict[str, Any]:
    """What the widget is told when a reply is done: the answer's ids and state, and the stored messages of the
    turn as the visitor is shown them (sources, ratings) to replace what it drew while the text streamed."""
    ids = [i for i in (answer.question_id, answer.message_id) if i]
    view = access.updates(answer.session_id, min(ids) - 1 if ids else 0).to_dict()
    if not ids:  # nothing was stored (asking again for a person): the state alone
        view["messages"] = []
    shown = {"session_id": answer.session_id, "message_id": answer.message_id, "question_id": answer.question_id,
             "status": answer.status, "mode": answer.mode, "text": answer.answer}  # fmt: skip
    return {"answer": shown, **view}


@router.post(f"{PREFIX}/ask", summary="A visitor's message, answered as server-sent events")
def ask(body: AskBody, request: Request, access: Acting = visitor):
    reply = access.ask_stream(body.question, body.session_id)
    first, rest = sse.first_and_rest(reply)  # a refusal at the start (rate limit, not yours) keeps its status
    state = request.scope.setdefault("state", {})

    def events():
        try:
            if first:
                yield sse.event({"delta": first})
            for piece in rest:
                if piece:
                    yield sse.event({"delta": piece})
            state["kefu_mode"] = reply.answer.mode
            yield sse.event(answered(access, reply.answer))
        except Exception as exc:  # noqa: BLE001 - the stream has begun: tell the widget inside it
            yield sse.error_event(exc, request_id(request))
        yield sse.DONE

    return sse.stream(events())


@router.post(f"{PREFIX}/conversation", summary="The visitor's conversation, as they are shown it")
def conversation(body: ConversationBody, access: Acting = visitor) -> dict[str, Any]:
    return access.updates(body.session_id, body.after).to_dict()


@router.post(f"{PREFIX}/handoff", summary="Ask for a person")
def handoff(body: HandoffBody, access: Acting = visitor) -> dict[str, Any]:
    return answered(access, access.request_human(body.session_id, body.language))


@router.post(f"{PREFIX}/feedback", summary="Rate an answer or an agent's reply")
def feedback(body: FeedbackBody, access: Acting = visitor) -> dict[str, Any]:
    record = access.feedback(body.message_id, body.rating)
    return {"message_id": body.message_id, "rating": record.rating}


class Streams:
    """Live streams open in this worker (one event loop: no lock needed), at most `limit`."""

    def __init__(self, limit: int):
        self.limit = limit
        self.open = 0


@router.post(EVENTS_PATH, summary="The conversation's new messages as they happen (server-sent events)")
async def events(body: ConversationBody, request: Request):
    kefu = service(request)
    token, origin = bearer(request) or "", origin_of(request)

    def look(after: int) -> dict[str, Any]:  # the visitor checked again (key active, origin allowed) on every poll
        return kefu.acting_as(kefu.visitor_principal(token, origin)).updates(body.session_id, after).to_dict()

    first = await run_in_threadpool(look, body.after)  # a refusal before the stream begins keeps its status
    streams: Streams = request.app.state.widget_streams
    if streams.open >= streams.limit:
        metrics.REFUSED_BUSY.labels("widget_streams").inc()
        return error_response(503, f"too many live chats on this server ({streams.limit}): try again shortly", 5)
    streams.open += 1

    async def stream() -> AsyncIterator[str]:
        try:
            view, last = first, body.after
            deadline, quiet_since = time.monotonic() + STREAM_SECONDS, time.monotonic()
            state = None
            while True:
                now = (view["status"], view["queue_position"], view["agent"])
                if view["messages"] or now != state:
                    yield sse.event(view)
                    last = max([last, *(m["id"] for m in view["messages"])])
                    state, quiet_since = now, time.monotonic()
                elif time.monotonic() - quiet_since > KEEP_ALIVE_SECONDS:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(POLL_SECONDS)
                view = await run_in_threadpool(look, last)
        except Exception as exc:  # noqa: BLE001 - the stream has begun: tell the widget inside it
            yield sse.error_event(exc, request_id(request))
        finally:
            streams.open -= 1
        yield sse.DONE

    return sse.stream(stream())


# -- CORS -------------------------------------------------------------------------------------------------


class WidgetCors:
    """CORS for `/widget/v1`, answered for the origins the active widget keys name (see the module's docstring);
    any other path passes through untouched. Outermost, so a preflight never reaches KEFU_CORS_ORIGINS' handler."""

    ALLOW_HEADERS = "Authorization, Content-Type, X-Request-ID"
    EXPOSE_HEADERS = "X-Request-ID, Retry-After"

    def __init__(self, app, known: Callable[[str], bool]):
        self.app = app
        self.known = known
        self._cache: dict[str, tuple[float, bool]] = {}

    async def allowed(self, origin: str) -> bool:
        hit = self._cache.get(origin)
        if hit is not None and time.monotonic() - hit[0] < ORIGINS_SECONDS:
            return hit[1]
        answer = await anyio.to_thread.run_sync(self.known, origin)
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[origin] = (time.monotonic(), answer)
        return answer

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith(PREFIX + "/"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin", "")
        allowed = bool(origin) and await self.allowed(origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            head = [(b"vary", b"Origin"), (b"content-length", b"0")]
            if allowed:
                head += [(b"access-control-allow-origin", origin.encode("latin-1")),
                         (b"access-control-allow-methods", b"POST"),
                         (b"access-control-allow-headers", self.ALLOW_HEADERS.encode()),
                         (b"access-control-max-age", b"600")]  # fmt: skip
            await send({"type": "http.response.start", "status": 204 if allowed else 403, "headers": head})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"access-control-")]
                kept.append((b"vary", b"Origin"))
                if allowed:
                    kept += [(b"access-control-allow-origin", origin.encode("latin-1")),
                             (b"access-control-expose-headers", self.EXPOSE_HEADERS.encode())]  # fmt: skip
                message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def install(app: FastAPI, kefu, stream_limit: int) -> None:
    """The widget's routes, its CORS (call last: it must be the outermost middleware) and the stream count."""
    app.include_router(router)
    app.state.widget_streams = Streams(stream_limit)
    app.add_middleware(WidgetCors, known=kefu.widget_origin_known)
