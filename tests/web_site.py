"""A small website served from the test process (http.server on a free loopback port), for the crawler tests.

Routes map a path with its query ("/help/?a=1") to a `Route`: status, body, headers, an optional delay and
ETag support (a request whose If-None-Match matches gets 304). Every request is recorded (path, headers,
arrival time), so tests can assert what was asked for and what never was. `help_centre()` builds the site the
tests share: links, a sitemap index, a robots.txt disallow, an outside link, redirects on and off the site,
a 404, a huge page, a slow page, an image and a page that names another as canonical.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None  # answer 304 to a matching If-None-Match
    length: bool = True  # send Content-Length (False: the body ends when the connection closes)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    at: float


class Site:
    def __init__(self, routes: dict[str, Route] | None = None):
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):  # noqa: N802 (http.server's name)
                with site._lock:
                    site.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, time.monotonic()))
                route = site.routes.get(self.path)
                if route is None:
                    route = Route("<h1>Not found</h1>", status=404)
                if route.delay:
                    time.sleep(route.delay)
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.end_headers()
                    return
                body = route.body.encode("utf-8") if isinstance(route.body, str) else route.body
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    if route.length:
                        self.send_header("Content-Length", str(len(body)))
                    if route.etag:
                        self.send_header("ETag", route.etag)
                    for name, value in route.headers.items():
                        self.send_header(name, value.replace("{site}", site.url))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the crawler stopped reading (a page over the size limit)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Site:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def asked(self, path: str) -> int:
        """How many requests asked for this path (with its query)."""
        return sum(1 for r in self.requests if r.path == path)

    def page(self, path: str, html: str, **kwargs) -> None:
        self.routes[path] = Route(html.replace("{site}", self.url), **kwargs)


def article(title: str, text: str, links: list[str] = (), head: str = "") -> str:
    """A help-centre page: navigation with the links, a header and footer, and the article itself."""
    nav = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<!doctype html><html><head><title>{title}</title>{head}</head><body>"
        f"<header>Acme Help Centre banner</header><nav><ul>{nav}</ul></nav>"
        f"<main><h1>{title}</h1><p>{text}</p></main>"
        f"<footer>Copyright Acme footer text</footer></body></html>"
    )


def help_centre(site: Site, outside: Site, *, huge_bytes: int, slow_s: float) -> None:
    """The shared test site under /help/ (see the module docstring)."""
    o = outside.url
    site.routes["/robots.txt"] = Route(
        "User-agent: *\nDisallow: /help/private\n\nUser-agent: SomeOtherBot\nDisallow: /\n\n"
        "Sitemap: {site}/sitemap_index.xml\n".replace("{site}", site.url),
        content_type="text/plain",
    )
    site.routes["/sitemap_index.xml"] = Route(
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{site.url}/sitemaps/pages.xml</loc></sitemap>"
        f"<sitemap><loc>{o}/sitemap.xml</loc></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    site.routes["/sitemaps/pages.xml"] = Route(
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{site.url}/help/sitemap-only</loc></url>"
        f"<url><loc>{site.url}/help/returns?utm_source=newsletter</loc></url>"
        f"<url><loc>{site.url}/elsewhere/not-in-scope</loc></url></urlset>",
        content_type="application/xml",
    )
    links = [
        "/help/returns", "returns#how-long", "/help/shipping?utm_campaign=spring", "/help/private/secret",
        f"{o}/phish", "/help/moved", "/help/away", "/help/missing", "/help/huge", "/help/slow", "/about",
        "mailto:help@acme.example", "/help/logo.png", "/help/returns-copy",
    ]  # fmt: skip
    site.page("/help/", article("Acme help", "Welcome to the Acme help centre.", links))
    site.page("/help/returns", article("Returns", "Items may be returned within 30 days for a full refund.",
                                       ["/help/", "/help/shipping"]), etag='"returns-v1"')  # fmt: skip
    site.page("/help/returns-copy", article("Returns", "A copy of the returns page.", ["/help/"],
                                            head='<link rel="canonical" href="/help/returns">'))  # fmt: skip
    site.page("/help/shipping", article("Shipping", "Orders ship within 2 business days by courier.", ["/help/"]))
    site.routes["/help/moved"] = Route(status=301, headers={"Location": "/help/shipping-new"})
    site.page("/help/shipping-new", article("Express shipping", "Express orders arrive the next day."))
    site.routes["/help/away"] = Route(status=302, headers={"Location": f"{o}/landing"})
    site.page("/help/sitemap-only", article("Warranty", "Every kettle has a two-year warranty."))
    site.page("/help/private/secret", article("Secret", "Internal staff notes."))
    site.page("/elsewhere/not-in-scope", article("Elsewhere", "Not part of the help centre."))
    site.page("/about", article("About", "About Acme."))
    site.routes["/help/huge"] = Route("<html><body><p>" + "x" * huge_bytes + "</p></body></html>", length=False)
    site.page("/help/slow", article("Slow", "This page takes its time."), delay=slow_s)
    site.routes["/help/logo.png"] = Route(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, content_type="image/png")
    outside.page("/phish", article("Phish", "Pay to bitcoin address."))
    outside.page("/landing", article("Landing", "Another site."))
