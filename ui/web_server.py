"""The web app's server: Streamlit's own (`st.App` on uvicorn; `kefu ui` runs it through `python -m ui`), with
the two things a Streamlit script cannot do itself, because it talks to the browser over a WebSocket and never
answers an HTTP request: give the browser cookies, and make them HttpOnly, so no script on the page can read them.

- **The visitor cookie** (`kefu_visitor`): every HTTP response to a browser without a valid one sets one, a
  signed visitor token (`app.access.tokens`: no state on the server), HttpOnly, SameSite=Lax, a year, Secure
  over HTTPS. The page's WebSocket carries it, the script reads it (`st.context.cookies`, `ui.session`): that is
  who an account-less customer is across reloads, whose conversations they may open, and what the rate limits
  count.
- **The staff sign-in cookie** (`kefu_staff`): the sign-in form checks the password in the script, which holds
  the sign-in on the server (`app.access.sign_ins`) with a one-use ticket for this browser, and sends the
  browser to `/kefu/signed-in?ticket=…`. That route trades the ticket, in the browser it was made for (its
  visitor cookie), for a fresh random token set as an HttpOnly, SameSite=Strict cookie lasting as long as the
  sign-in, and sends the browser on to the desk. A reload finds the sign-in by that cookie; signing out ends it
  on the server and `/kefu/signed-out` removes the cookie.

Why this design: Streamlit cannot set a cookie from a script, and what a page script could set (or a token in
the URL or the page) any injected script could read and carry off; a cookie the server sets as HttpOnly can
only be sent, never read, and SameSite keeps other sites from sending it. The sign-in itself stays on the
server, so it can expire, and end at once on sign-out or a password change, wherever the cookie is. A token
minted at redemption, not before, means a cookie planted in the browser beforehand is worth nothing.

Who the client is (its address, for the limits and the sign-in lock-out) is the connection's own address, or
the forwarded one from a proxy in KEFU_TRUSTED_PROXIES (`python -m ui` configures uvicorn so).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.access.auth import AuthenticationError
from ui.resources import get_service
from ui.session import SIGNED_IN_PATH, SIGNED_OUT_PATH, STAFF_COOKIE, VISITOR_COOKIE

VISITOR_DAYS = 365
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _cookie_header(name: str, value: str, max_age: int, secure: bool, same_site: str) -> tuple[bytes, bytes]:
    response = Response()
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite=same_site)
    return next((k, v) for k, v in response.raw_headers if k == b"set-cookie")


class VisitorCookie:
    """ASGI middleware: a browser without a valid visitor cookie gets one with the response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        token = HTTPConnection(scope).cookies.get(VISITOR_COOKIE)
        try:
            get_service().web_visitor(token)  # a signature check, no I/O
            return await self.app(scope, receive, send)
        except AuthenticationError:
            pass
        header = _cookie_header(VISITOR_COOKIE, get_service().new_web_visitor(), VISITOR_DAYS * 86_400,
                                scope.get("scheme") == "https", "lax")  # fmt: skip

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def signed_in(request: Request) -> Response:
    """Trade a sign-in's ticket for the HttpOnly sign-in cookie (this browser only, once), then go to the desk."""
    ticket = request.query_params.get("ticket", "")
    try:
        token, expires = await run_in_threadpool(get_service().redeem_sign_in, ticket, request.cookies.get(VISITOR_COOKIE))
    except AuthenticationError:
        return RedirectResponse("/sign_in", 303, headers=NO_STORE)
    response = RedirectResponse("/desk", 303, headers=NO_STORE)
    seconds = max(1, int((expires - datetime.now(timezone.utc)).total_seconds()))
    response.set_cookie(STAFF_COOKIE, token, max_age=seconds, path="/", secure=request.url.scheme == "https",
                        httponly=True, samesite="strict")  # fmt: skip
    return response


async def signed_out(request: Request) -> Response:
    """Remove the sign-in cookie (ending its sign-in too, if it is still on), then go to the chat."""
    token = request.cookies.get(STAFF_COOKIE)
    if token:
        service = get_service()
        try:
            await run_in_threadpool(lambda: service.sign_out(service.resume_sign_in(token)))
        except AuthenticationError:
            pass  # ended already
    response = RedirectResponse("/", 303, headers=NO_STORE)
    response.delete_cookie(STAFF_COOKIE, path="/", secure=request.url.scheme == "https", httponly=True, samesite="strict")
    return response


app = st.App(
    Path(__file__).resolve().parent / "streamlit_app.py",
    routes=[Route(SIGNED_IN_PATH, signed_in), Route(SIGNED_OUT_PATH, signed_out)],
    middleware=[Middleware(VisitorCookie)],
)
