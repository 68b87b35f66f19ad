"""What every request passes through, as one plain ASGI middleware (it sees streamed answers to their last
byte, which Starlette's `BaseHTTPMiddleware` would not):

- a request id: the client's `X-Request-ID` when it is sane (1 to 64 letters, digits, `.`, `_`, `-`), else a
  new one; every response carries it back;
- a concurrency limit: more than KEFU_MAX_REQUESTS requests at once in this worker are answered 503 with
  `Retry-After` at once instead of piling up (health and metrics are never refused; the widget's live streams,
  which wait rather than work, are neither counted nor refused here: `api.widget` caps them);
- a body limit: a JSON body over KEFU_MAX_BODY_KB, or an upload over what the ingest limits allow
  (KEFU_MAX_UPLOAD_FILES × KEFU_MAX_FILE_MB), is a 413 before it is read;
- a last resort: an exception nothing else answered is a 500 that says only "internal error" and the id;
- metrics (`app.metrics`): latency by route template and answer mode, counts by status, requests in flight;
- one JSON log line per request on the `kefu.api` logger: method, route, status, ms, request id (no query
  string, no body: they may hold what customers wrote).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException

from app import metrics
from api.errors import error_body, response_for

log = logging.getLogger("kefu.api")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNLIMITED = ("/healthz", "/readyz", "/metrics", "/widget/v1/events")
UPLOAD_PATHS = ("/api/v1/documents",)


class BodyTooLarge(HTTPException):
    """A body that grew past its limit while being read (no Content-Length): FastAPI passes HTTPExceptions on."""

    def __init__(self, message: str):
        super().__init__(413, message)


class RequestMiddleware:
    def __init__(self, app, max_requests: int, max_body_bytes: int, max_upload_bytes: int):
        self.app = app
        self.max_requests = max_requests
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.in_flight = 0  # one event loop per worker: no lock needed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        rid = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        path = scope.get("path", "")
        status = {"code": 500, "started": False}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        async def refuse(code: int, message: str, extra: dict[str, str] | None = None):
            body = json.dumps(error_body(code, message)).encode()
            head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            head += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
            await send_with_id({"type": "http.response.start", "status": code, "headers": head})
            await send_with_id({"type": "http.response.body", "body": body})

        limited = path not in UNLIMITED
        if limited and self.in_flight >= self.max_requests:
            metrics.REFUSED_BUSY.labels("requests").inc()
            await refuse(503, f"the server is busy ({self.max_requests} requests at once): try again shortly",
                         {"retry-after": "1"})  # fmt: skip
            self._finish(scope, status["code"], started, rid)
            return
        limit = self.max_upload_bytes if path.startswith(UPLOAD_PATHS) else self.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await refuse(413, self._too_large(limit, path))
            self._finish(scope, status["code"], started, rid)
            return
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(self._too_large(limit, path))
            return message

        if limited:
            self.in_flight += 1
            metrics.IN_FLIGHT.inc()
        try:
            await self.app(scope, counted_receive, send_with_id)
        except BodyTooLarge:
            if not status["started"]:
                await refuse(413, self._too_large(limit, path))
        except Exception as exc:  # noqa: BLE001 - the last resort: a one-line 500, never a traceback
            if not status["started"]:
                response = response_for(exc, rid)
                await response(scope, receive, send_with_id)
            else:
                log.error(json.dumps({"request_id": rid, "error": f"{type(exc).__name__} after the response began"}))
        finally:
            if limited:
                self.in_flight -= 1
                metrics.IN_FLIGHT.dec()
            self._finish(scope, status["code"], started, rid)

    def _too_large(self, limit: int, path: str) -> str:
        if path.startswith(UPLOAD_PATHS):
            return (f"the upload is larger than {limit // (1024 * 1024)} MB (KEFU_MAX_UPLOAD_FILES files of at most "
                    "KEFU_MAX_FILE_MB each): send fewer or smaller files")  # fmt: skip
        return f"the request body is larger than {limit // 1024} KB (KEFU_MAX_BODY_KB): send less"

    def _finish(self, scope, code: int, started: float, rid: str) -> None:
        seconds = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        mode = scope.get("state", {}).get("kefu_mode", "")
        metrics.REQUEST_SECONDS.labels(template, method, mode).observe(seconds)
        metrics.REQUESTS.labels(template, method, str(code)).inc()
        line = {"method": method, "route": template, "status": code, "ms": round(seconds * 1000, 1), "request_id": rid}
        if mode:
            line["mode"] = mode
        log.info(json.dumps(line))
