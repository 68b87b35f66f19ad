"""HTTP for the crawler: one GET at a time, with an identifying User-Agent, conditional headers, a size cap and
a deadline for the whole response, never following a redirect by itself (the crawler decides where a
redirect may lead), and never connecting to an address the policy refuses.

The address check runs where the connection is made: each name is resolved here, every address it resolves to
is checked (`ingest.crawl.urls.is_public_address`), and the connection goes to a checked address. So a
redirect or a DNS answer that changes between requests cannot point the crawler at 127.0.0.1, the LAN or a
cloud metadata service (169.254.169.254), unless the site being crawled is itself on such an address
(`allow_private`, decided by the crawler from the start URL). Proxy variables (HTTP_PROXY ...) are not read:
a proxy would make the address check meaningless.

Bodies are read as a stream and the read stops at the cap: a Content-Length over it is refused before
reading, gzip and deflate bodies are inflated here up to the cap (a compressed bomb cannot grow past it).
Built on httpcore (httpx's transport layer), which lets the connection step be replaced.
"""

from __future__ import annotations

import socket
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpcore

from ingest.crawl.urls import is_public_address

Resolve = Callable[[str, int], list[str]]


class FetchError(Exception):
    """A request that produced no usable response; the message says why in words a person understands."""


class AddressRefused(FetchError):
    """The host resolves only to addresses the crawler may not contact."""


@dataclass
class Response:
    url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case, repeated values joined by ", "
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (IPv4 and IPv6), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"the host name {host!r} could not be resolved ({exc.strerror or exc})") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's connection step with the address policy in front of it."""

    def __init__(self, allowed: Callable[[str], bool], resolve: Resolve):
        self.allowed = allowed
        self.resolve = resolve
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = self.resolve(host, port)
        usable = [a for a in addresses if self.allowed(a)]
        if not usable:
            shown = ", ".join(addresses[:3]) or "nothing"
            raise AddressRefused(
                f"{host} resolves to {shown}: a private, loopback or reserved address, which a crawl of a public "
                "site never contacts"
            )
        last: Exception | None = None
        for address in usable:
            try:
                return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class Fetcher:
    """GET requests under the crawler's rules. Not thread-safe: one crawl, one fetcher."""

    def __init__(
        self,
        user_agent: str,
        timeout: float,
        max_bytes: int,
        allow_private: bool = False,
        resolve: Resolve = resolve_addresses,
    ):
        self.user_agent = user_agent
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        backend = _GuardedBackend(lambda a: self.allow_private or is_public_address(a), resolve)
        self._pool = httpcore.ConnectionPool(network_backend=backend, max_connections=2, keepalive_expiry=30.0)

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    def get(self, url: str, headers: Mapping[str, str] | None = None, max_bytes: int | None = None) -> Response:
        """GET one URL (no redirect followed); FetchError when no complete response came back in time or within
        the size cap. Any HTTP status is a response, 404 and 500 included."""
        cap = self.max_bytes if max_bytes is None else max_bytes
        sent = {
            "User-Agent": self.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,text/plain;q=0.8,*/*;q=0.5",
            "Accept-Encoding": "gzip",
            **(headers or {}),
        }
        deadline = time.monotonic() + self.timeout
        t = self.timeout
        extensions = {"timeout": {"connect": t, "read": t, "write": t, "pool": t}}
        try:
            with self._pool.stream("GET", url, headers=list(sent.items()), extensions=extensions) as raw:
                got = _headers(raw.headers)
                length = got.get("content-length", "")
                if length.isdigit() and int(length) > cap:
                    raise FetchError(f"the page is {_mb(int(length))}; the limit is {_mb(cap)}")
                body = _read_body(raw.iter_stream(), got.get("content-encoding", ""), cap, deadline, self.timeout)
                return Response(url, raw.status, got, body)
        except FetchError:
            raise
        except httpcore.TimeoutException:
            raise FetchError(f"no answer within {self.timeout:g} s") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise FetchError(f"the request failed ({type(exc).__name__}: {exc or 'connection closed'})") from None


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


def _read_body(chunks, encoding: str, cap: int, deadline: float, timeout: float) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    elif encoding in ("", "identity"):
        inflater = None
    else:
        raise FetchError(f"the page is sent with the {encoding!r} content encoding, which the crawler does not read")
    body = bytearray()
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise FetchError(f"the page did not arrive within {timeout:g} s")
        if inflater is None:
            body += chunk
        else:
            try:
                body += inflater.decompress(chunk, cap + 1 - len(body))
            except zlib.error as exc:
                raise FetchError(f"the page's {encoding} compression is damaged ({exc})") from None
        if len(body) > cap:
            raise FetchError(f"the page is larger than {_mb(cap)}, the limit")
    if inflater is not None and inflater.unconsumed_tail:
        raise FetchError(f"the page is larger than {_mb(cap)}, the limit")
    return bytes(body)
