"""Web addresses for the crawler: one canonical form per page, the part of a site a crawl covers, and which
network addresses it may contact.

`canonical_url` makes the many spellings of one page one string (the page's identity: its document's source
and id): scheme and host in lower case, the default port, fragment and session parameters dropped, dot
segments resolved, percent-escapes normalised, tracking parameters (`utm_*`, `gclid`, ...) removed and the
remaining query parameters sorted. A `Scope` is the start URL's site (host and port; http and https on their
default ports count as one site) and its path. `is_public_address` decides which resolved addresses may be
contacted. Pure: nothing here resolves a name or opens a connection (`ingest.crawl.fetch` does).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 2048  # longer addresses are refused: no help-centre page needs one, crawler traps make them

# Query parameters that identify a visit, a campaign or a session, never a page.
TRACKING_PARAMS = frozenset({
    "gclid", "gclsrc", "dclid", "fbclid", "msclkid", "yclid", "twclid", "igshid", "mc_cid", "mc_eid", "_ga", "_gl",
    "_hsenc", "_hsmi", "mkt_tok", "ref_src", "spm", "jsessionid", "phpsessid", "aspsessionid", "sessionid", "sid",
})  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "hsa_")
# A session id written into the path (`/faq;jsessionid=...`): dropped with its parameter.
_PATH_SESSION_RE = re.compile(r";(?:jsessionid|phpsessid|sid|sessionid)=[^/?#]*", re.IGNORECASE)
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


def _normalise_escapes(text: str, safe: str) -> str:
    """Percent-escapes of unreserved characters decoded, the others in upper case; characters that must be
    escaped (spaces, non-ASCII as UTF-8) escaped. Escapes of reserved characters (`%2F`) keep their meaning."""

    def fix(match: re.Match) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return quote(_ESCAPE_RE.sub(fix, text), safe=safe)


def _host(hostname: str) -> str | None:
    host = hostname.strip().rstrip(".").lower()
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def canonical_url(url: str, base: str | None = None) -> str | None:
    """The canonical form of an http(s) URL (relative ones resolved against `base`), or None for anything else:
    another scheme (`mailto:`, `javascript:`), no host, an invalid port, an address over MAX_URL_CHARS."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL_CHARS:
        return None
    try:
        parts = urlsplit(urljoin(base, url) if base else url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = _host(parts.hostname)
    if host is None:
        return None
    if port == DEFAULT_PORTS[scheme]:
        port = None
    path = _normalise_escapes(_PATH_SESSION_RE.sub("", parts.path), _PATH_SAFE) or "/"
    trailing = path.endswith("/")
    path = "/" + posixpath.normpath(path).lstrip("/")  # dot segments and doubled slashes go
    if trailing and path != "/":
        path += "/"
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    pairs.sort(key=lambda kv: kv[0])  # stable: repeated keys keep their order
    query = urlencode(pairs, quote_via=quote, safe="-._~:@!$'()*,;/")
    canonical = urlunsplit((scheme, _netloc(host, port), path, query, ""))
    return canonical if len(canonical) <= MAX_URL_CHARS else None


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in TRACKING_PARAMS or k.startswith(TRACKING_PREFIXES)


def site_key(url: str) -> tuple[str, int]:
    """(host, port) of a canonical URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 0)


def _same_site(a: str, b: str) -> bool:
    (host_a, port_a), (host_b, port_b) = site_key(a), site_key(b)
    if host_a != host_b:
        return False
    if port_a == port_b:
        return True
    defaults = set(DEFAULT_PORTS.values())
    return port_a in defaults and port_b in defaults  # http://host and https://host: one site


@dataclass(frozen=True)
class Scope:
    """What one crawl covers: pages of the start URL's site under its path.

    The path prefix is the start path when it ends in "/" ("/help/" covers "/help/returns"); a start path that
    names a file ("/help/index.html") covers its folder; any other ("/help") covers itself and what lies under
    it ("/help/returns", not "/helpdesk")."""

    start: str  # canonical
    prefix: str

    @classmethod
    def of(cls, url: str) -> Scope:
        start = canonical_url(url)
        if start is None:
            raise ValueError(f"{url!r} is not an http:// or https:// address with a host name")
        path = urlsplit(start).path
        if not path.endswith("/"):
            last = path.rsplit("/", 1)[-1]
            path = path[: len(path) - len(last)] if "." in last else path + "/"
        return cls(start, path)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.start)
        return f"{parts.scheme}://{parts.netloc}"

    def on_site(self, url: str) -> bool:
        """Whether a canonical URL is on the start URL's site (same host and port)."""
        return _same_site(self.start, url)

    def contains(self, url: str) -> bool:
        """Whether a canonical URL is on the site and under the scope's path."""
        if not self.on_site(url):
            return False
        path = urlsplit(url).path
        return path.startswith(self.prefix) or path + "/" == self.prefix

    def describe(self) -> str:
        return self.origin + self.prefix


def is_public_address(address: str) -> bool:
    """Whether an IP address belongs to the public internet: not loopback, private (10/8, 192.168/16, fc00::/7
    ...), link-local (169.254/16, where cloud metadata services answer), carrier-grade NAT, multicast or
    reserved. An IPv4 address inside IPv6 (::ffff:10.0.0.1) is judged as the IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return ip.is_global and not ip.is_multicast
