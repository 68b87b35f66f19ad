"""The crawler: from a start URL, every page of that site under its path that links or sitemaps lead to, each
reported once with its outcome, as it is visited.

Order of work: the address policy is decided (a start URL on a private or loopback address may be crawled;
otherwise such addresses are never contacted), robots.txt is read (a 4xx allows everything; a 5xx, a network
failure or a redirect to another host stops the crawl, RFC 9309), the start page is visited (an on-site
redirect moves the scope with it: "/" -> "/hc/en-us/"), the sitemaps robots.txt names (or /sitemap.xml) and
the sitemap indexes they lead to add their pages, then pages are visited breadth first. A page is visited
when it is on the site, under the scope's path, allowed by robots.txt and not deeper than `max_depth` links
from the start (sitemap pages count as one link away); requests are spaced by `delay` or robots.txt's
Crawl-delay, whichever is longer. Redirects are followed by the crawler, never off the site or out of scope.
One page is one address: canonical URLs (`ingest.crawl.urls`), `<link rel="canonical">`, and bodies
identical to one already seen are visited once.

Incremental: for a page the caller knew (`KnownPage`: ETag, Last-Modified, body hash, links) the request is
conditional; a 304 reports `not_modified` with the known links (which are followed as before). The summary
says whether the crawl was complete: only then are known pages that were not reached truly unlinked.

Outcomes: `fetched` (body and how to read it), `not_modified`, `gone` (404, 410), `skipped` (robots.txt, a
redirect off the site or out of scope, noindex, a type Kefu does not read, other 4xx), `failed` (timeouts,
too large, 5xx, network). Knows nothing of documents or stores (`ingest.crawl.pages` and the app do).
"""

from __future__ import annotations

import codecs
import hashlib
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

from ingest.crawl.fetch import FetchError, Fetcher, Resolve, Response, resolve_addresses
from ingest.crawl.links import read_links, robots_directives
from ingest.crawl.robots import MAX_ROBOTS_BYTES, Robots, parse_robots
from ingest.crawl.sitemaps import SitemapError, parse_sitemap
from ingest.crawl.urls import Scope, canonical_url, is_public_address, site_key
from ingest.errors import LoadError
from ingest.loaders import decode_bytes

AGENT_TOKEN = "KefuBot"
DEFAULT_USER_AGENT = f"{AGENT_TOKEN}/0.1 (+Kefu customer-service assistant; self-hosted)"
MB = 1024 * 1024

# Page outcomes
FETCHED = "fetched"
NOT_MODIFIED = "not_modified"
GONE = "gone"
SKIPPED = "skipped"
FAILED = "failed"

# The content types Kefu reads, and the file extension its loaders know them by.
READABLE_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
_REDIRECTS = (301, 302, 303, 307, 308)
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class CrawlError(ValueError):
    """The crawl cannot start (the start URL is not a web address); the message says why."""


@dataclass(frozen=True)
class CrawlOptions:
    max_pages: int = 500  # pages visited (requested), per crawl
    max_depth: int = 10  # links followed from the start page
    max_page_bytes: int = 10 * MB  # per page or sitemap, after decompression
    max_seconds: float = 3600.0  # the whole crawl
    timeout: float = 30.0  # one request, body included
    delay: float = 1.0  # least seconds between two requests (robots.txt's Crawl-delay may ask more)
    max_redirects: int = 5
    max_sitemaps: int = 20  # sitemap files read, indexes included
    user_agent: str = DEFAULT_USER_AGENT
    agent_token: str = AGENT_TOKEN  # the product token robots.txt groups are matched against
    allow_private: bool | None = None  # None: only when the start URL's host is a private/loopback address


@dataclass(frozen=True)
class KnownPage:
    """What the last crawl kept of a page: what makes the next request conditional and lets a 304 go on."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None
    links: tuple[str, ...] = ()

    def conditional_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass
class Page:
    url: str  # canonical; the page's identity
    outcome: str
    depth: int
    error: str | None = None  # why it was skipped or failed
    status: int | None = None  # the HTTP status, when a response came
    body: bytes = b""  # fetched: HTML as UTF-8 (decoded by its declared charset), other types as sent
    extension: str = ""  # fetched: how to read the body (".html", ".pdf", ...)
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None  # of the bytes as sent
    links: tuple[str, ...] = ()  # in-scope pages it links to
    requested: str | None = None  # the address asked for, when a redirect or a canonical link led elsewhere


@dataclass
class CrawlSummary:
    start: str
    scope: str = ""
    complete: bool = False  # every page found was visited: known pages not reached are no longer linked
    stopped: str | None = None  # why the crawl is not complete
    requests: int = 0
    visited: int = 0
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)  # sitemap problems and the like
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("start", "scope", "complete", "stopped", "requests", "visited",
                                              "duplicates", "notes")} | {"seconds": round(self.seconds, 2)}  # fmt: skip


class _OutOfTime(Exception):
    pass


def _reason(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def decode_html(body: bytes, content_type: str) -> str:
    """An HTML page's text: by the charset its Content-Type or <meta> declares, else as `decode_bytes` guesses."""
    declared = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    meta = None if declared or body[:3] == codecs.BOM_UTF8 else _META_CHARSET_RE.search(body[:4096])
    name = declared.group(1) if declared else meta.group(1).decode("ascii") if meta else None
    if name:
        try:
            codecs.lookup(name)
            return body.decode(name, errors="replace")
        except LookupError:
            pass
    return decode_bytes(body, "the page")


class Crawler:
    """One crawl of one site. `crawl()` yields pages as they are visited; `summary` is final when it ends."""

    def __init__(
        self,
        start_url: str,
        options: CrawlOptions | None = None,
        known: Mapping[str, KnownPage] | None = None,
        *,
        resolve: Resolve = resolve_addresses,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        try:
            self.scope = Scope.of(start_url)
        except ValueError as exc:
            raise CrawlError(str(exc)) from None
        self.options = options or CrawlOptions()
        self.known = dict(known or {})
        self.summary = CrawlSummary(start=self.scope.start, scope=self.scope.describe())
        self._resolve = resolve
        self._sleep = sleep
        self._clock = clock
        self._fetcher = Fetcher(self.options.user_agent, self.options.timeout, self.options.max_page_bytes,
                                resolve=resolve)  # fmt: skip
        self._robots = Robots.allowing_all()
        self._seen: set[str] = set()
        self._bodies: set[str] = set()
        self._frontier: deque[tuple[str, int]] = deque()
        self._last_request: float | None = None
        self._deadline = 0.0

    @property
    def queued(self) -> int:
        """Pages found and not yet visited (for a progress bar: the total grows as pages are found)."""
        return len(self._frontier)

    # -- the crawl -------------------------------------------------------------------------------------

    def crawl(self) -> Iterator[Page]:
        started = self._clock()
        self._deadline = started + self.options.max_seconds
        try:
            yield from self._crawl()
        except _OutOfTime:
            self.summary.stopped = f"the time limit ({self.options.max_seconds:g} s) was reached"
        finally:
            self._fetcher.close()
            self.summary.seconds = self._clock() - started
            self.summary.scope = self.scope.describe()

    def _crawl(self) -> Iterator[Page]:
        self._fetcher.allow_private = self._private_allowed()
        problem = self._read_robots()
        if problem is not None:
            self.summary.stopped = problem
            yield Page(self.scope.start, FAILED, 0, error=problem)
            return
        start = self.scope.start
        self._seen.add(start)
        if not self._robots.allowed(start):
            self.summary.stopped = "robots.txt disallows the start page"
            yield Page(start, SKIPPED, 0, error="disallowed by robots.txt")
            return
        page = self._visit(start, 0)
        if page is not None:
            self.summary.visited += 1
            yield page
        if page is None or page.outcome not in (FETCHED, NOT_MODIFIED, SKIPPED):
            self.summary.stopped = "the start page could not be read"
            return
        self._read_sitemaps()
        while self._frontier:
            if self.summary.visited >= self.options.max_pages:
                self.summary.stopped = f"the page limit ({self.options.max_pages}) was reached"
                return
            url, depth = self._frontier.popleft()
            if not self._robots.allowed(url):
                yield Page(url, SKIPPED, depth, error="disallowed by robots.txt")
                continue
            page = self._visit(url, depth)
            self.summary.visited += 1
            if page is not None:
                yield page
        self.summary.complete = True

    def _private_allowed(self) -> bool:
        if self.options.allow_private is not None:
            return self.options.allow_private
        host, port = site_key(self.scope.start)
        try:
            addresses = self._resolve(host, port)
        except FetchError:
            return False  # the first request says the name does not resolve
        return bool(addresses) and not any(is_public_address(a) for a in addresses)

    def _enqueue(self, links: tuple[str, ...] | list[str], depth: int) -> None:
        if depth > self.options.max_depth:
            return
        for link in links:
            if link not in self._seen and self.scope.contains(link):
                self._seen.add(link)
                self._frontier.append((link, depth))

    # -- requests --------------------------------------------------------------------------------------

    def _request(self, url: str, headers: dict[str, str] | None = None, max_bytes: int | None = None) -> Response:
        """One GET, no sooner than the politeness interval after the last; _OutOfTime past the crawl's deadline."""
        now = self._clock()
        interval = max(self.options.delay, self._robots.crawl_delay or 0.0)
        at = now if self._last_request is None else max(now, self._last_request + interval)
        if at >= self._deadline:
            raise _OutOfTime
        if at > now:
            self._sleep(at - now)
        self.summary.requests += 1
        try:
            return self._fetcher.get(url, headers, max_bytes)
        finally:
            self._last_request = self._clock()  # the interval runs from the end of a response

    def _get_on_site(self, url: str, max_bytes: int | None = None) -> Response:
        """GET following redirects that stay on the site (robots.txt, sitemaps); FetchError otherwise."""
        for _ in range(self.options.max_redirects + 1):
            response = self._request(url, max_bytes=max_bytes)
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                return response
            target = canonical_url(location, url)
            if target is None or not self.scope.on_site(target):
                raise FetchError(f"it redirects to {target or location!r}, another site, which the crawler never contacts")
            url = target
        raise FetchError(f"more than {self.options.max_redirects} redirects")

    def _read_robots(self) -> str | None:
        """Read robots.txt; the reason the crawl cannot go on, or None."""
        url = self.scope.origin + "/robots.txt"
        try:
            response = self._get_on_site(url, max_bytes=max(MAX_ROBOTS_BYTES, self.options.max_page_bytes))
        except FetchError as exc:
            return f"robots.txt at {url} could not be read, so nothing is crawled: {exc}"
        if 200 <= response.status < 300:
            self._robots = parse_robots(response.body.decode("utf-8", errors="replace"), self.options.agent_token)
        elif response.status == 429 or response.status >= 500:  # unreachable: everything disallowed
            return f"robots.txt at {url} answered {_reason(response.status)}, so nothing is crawled (RFC 9309)"
        return None  # no robots.txt (4xx): everything allowed

    def _read_sitemaps(self) -> None:
        listed = [canonical_url(s) for s in self._robots.sitemaps]
        named = [s for s in listed if s is not None and self.scope.on_site(s)]
        defaults = [self.scope.origin + "/sitemap.xml"]
        if self.scope.prefix != "/":
            defaults.append(self.scope.origin + self.scope.prefix + "sitemap.xml")
        queue = deque(dict.fromkeys(named or defaults))
        done: set[str] = set()
        while queue and len(done) < self.options.max_sitemaps:
            url = queue.popleft()
            if url in done:
                continue
            done.add(url)
            if not self._robots.allowed(url):
                continue
            try:
                response = self._get_on_site(url)
            except FetchError as exc:
                self.summary.notes.append(f"sitemap {url}: {exc}")
                continue
            if response.status != 200:
                if url in named or response.status != 404:
                    self.summary.notes.append(f"sitemap {url}: {_reason(response.status)}")
                continue
            try:
                sitemap = parse_sitemap(response.body, self.options.max_page_bytes)
            except SitemapError as exc:
                self.summary.notes.append(f"sitemap {url}: {exc}")
                continue
            pages = [canonical_url(u) for u in sitemap.pages]
            self._enqueue([u for u in pages if u is not None], 1)
            more = [canonical_url(u) for u in sitemap.sitemaps]
            queue.extend(u for u in more if u is not None and self.scope.on_site(u))
        if queue:
            self.summary.notes.append(f"more than {self.options.max_sitemaps} sitemaps: the rest were not read")

    # -- one page --------------------------------------------------------------------------------------

    def _visit(self, url: str, depth: int) -> Page | None:
        """Request a page, following redirects within the scope; None when it turns out to be a page already
        seen under another address."""
        requested = url
        for _ in range(self.options.max_redirects + 1):
            known = self.known.get(url)
            try:
                response = self._request(url, known.conditional_headers() if known else None)
            except FetchError as exc:
                return Page(url, FAILED, depth, error=str(exc), requested=_other(requested, url))
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                return self._read(url, depth, response, requested)
            target = canonical_url(location, url)
            if target is None:
                return Page(url, FAILED, depth, error=f"it redirects to {location!r}, which is not a web address",
                            status=response.status)  # fmt: skip
            if not self.scope.on_site(target):
                return Page(url, SKIPPED, depth, error=f"it redirects off the site, to {target}", status=response.status)
            if depth == 0 and url == self.scope.start and not self.scope.contains(target):
                self.scope = Scope.of(target)  # the start page moved: its new place is what the site is
            elif not self.scope.contains(target):
                return Page(url, SKIPPED, depth, error=f"it redirects outside {self.scope.describe()}, to {target}",
                            status=response.status)  # fmt: skip
            if not self._robots.allowed(target):
                return Page(url, SKIPPED, depth, error=f"it redirects to {target}, which robots.txt disallows",
                            status=response.status)  # fmt: skip
            if target in self._seen and target != url:
                self.summary.duplicates += 1
                return None
            self._seen.add(target)
            url = target
        return Page(url, FAILED, depth, error=f"more than {self.options.max_redirects} redirects",
                    requested=_other(requested, url))  # fmt: skip

    def _read(self, url: str, depth: int, response: Response, requested: str) -> Page | None:
        status = response.status
        base = Page(url, FAILED, depth, status=status, requested=_other(requested, url))
        known = self.known.get(url)
        if status == 304 and known is not None:
            self._enqueue(known.links, depth + 1)
            base.outcome, base.etag, base.last_modified = NOT_MODIFIED, known.etag, known.last_modified
            base.body_sha256, base.links = known.body_sha256, known.links
            return base
        if status in (404, 410):
            base.outcome, base.error = GONE, _reason(status)
            return base
        if status == 429 or status >= 500 or status == 304:
            base.error = _reason(status)
            return base
        if not 200 <= status < 300 or status == 204:
            base.outcome, base.error = SKIPPED, _reason(status)
            return base
        kind = response.content_type
        extension = READABLE_TYPES.get(kind)
        if extension is None:
            base.outcome, base.error = SKIPPED, f"not a page Kefu reads (content type {kind or 'not given'!r})"
            return base
        digest = hashlib.sha256(response.body).hexdigest()
        if digest in self._bodies:
            self.summary.duplicates += 1
            return None
        self._bodies.add(digest)
        base.etag, base.last_modified = response.headers.get("etag"), response.headers.get("last-modified")
        base.body_sha256, base.extension, base.body = digest, extension, response.body
        directives = robots_directives(response.headers.get("x-robots-tag", ""))
        index, follow = not ({"noindex", "none"} & directives), not ({"nofollow", "none"} & directives)
        if extension == ".html":
            try:
                text = decode_html(response.body, response.headers.get("content-type", ""))
            except LoadError as exc:
                base.error = str(exc)
                return base
            found = read_links(text, url, self.options.agent_token)
            index, follow = index and found.index, follow and found.follow
            canonical = found.canonical
            if canonical and canonical != url and self.scope.contains(canonical) and self._robots.allowed(canonical):
                if canonical in self._seen:
                    self.summary.duplicates += 1  # the page it names as the original is (or will be) visited
                    return None
                self._seen.add(canonical)
                base.url, base.requested = canonical, requested
            base.body = text.encode("utf-8")
            base.links = tuple(link for link in found.links if self.scope.contains(link))
            if follow:
                self._enqueue(base.links, depth + 1)
        if not index:
            base.outcome, base.error, base.body = SKIPPED, "the page asks not to be indexed (noindex)", b""
            return base
        base.outcome = FETCHED
        return base


def _other(requested: str, url: str) -> str | None:
    return requested if requested != url else None
