"""How the API says something went wrong: one JSON line in OpenAI's shape, `{"error": {"message", "type",
"code"}}`, with the status that fits, never a traceback.

A problem with the request (`app.errors.ClientError`: bad input, no or wrong key, a role that may not, not
found, a rate limit) is told as its message says; the model's queue being full (`Busy`) is a 503 with
`Retry-After`. Anything else is a 500 that says only "internal error" and the request id; the details go to the
`kefu.api` log, redacted (`app.errors.redact`).
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.access.auth import AuthenticationError, PermissionDenied
from app import metrics
from app.errors import USER_ERRORS, Busy, ClientError, NotFoundError, RateLimited, redact

log = logging.getLogger("kefu.api")

STATUS_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    422: ("invalid_request_error", "invalid_request"),
    429: ("rate_limit_error", "rate_limited"),
    500: ("server_error", "internal_error"),
    503: ("server_error", "busy"),
}


def error_body(status: int, message: str) -> dict:
    kind, code = STATUS_TYPES.get(status, ("invalid_request_error" if status < 500 else "server_error", str(status)))
    return {"error": {"message": " ".join(message.split())[:500], "type": kind, "code": code}}


def error_response(status: int, message: str, retry_after: float | None = None, headers: dict | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "")


def status_of(exc: BaseException) -> int:
    """The HTTP status of an exception `app/` raised."""
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, Busy):
        return 503
    if isinstance(exc, ClientError):
        return 400
    return 500


def response_for(exc: BaseException, rid: str) -> JSONResponse:
    """The one-line error response for any exception (500s logged with the request id, never shown)."""
    status = status_of(exc)
    if status == 500:
        log.error('{"request_id": "%s", "error": "%s: %s"}', rid, type(exc).__name__,
                  redact(str(exc)).replace('"', "'").replace("\n", " ")[:1000])  # fmt: skip
        return error_response(500, f"internal error (request id {rid})")
    if status == 503:
        metrics.REFUSED_BUSY.labels("model_queue").inc()
        return error_response(503, str(exc), exc.retry_after)
    retry = getattr(exc, "retry_after", None) if status == 429 else None
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, str(exc), retry, headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a one-line JSON error."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        if first.get("type") == "json_invalid" or tuple(first.get("loc", ())) == ("body",):
            return error_response(
                400, "the request body is not valid JSON: send a JSON object with Content-Type: application/json"
            )
        return error_response(400, f"{where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.url.path}: see /docs for the API's routes"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    async def kefu_error(request: Request, exc: Exception) -> JSONResponse:
        return response_for(exc, request_id(request))

    for kind in USER_ERRORS:  # anything else is answered by `api.middleware` (a 500 that says only that)
        app.add_exception_handler(kind, kefu_error)
