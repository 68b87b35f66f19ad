"""What a fetched HTML page tells the crawler: the pages it links to, its canonical address, and whether it may
be indexed and its links followed (`<meta name="robots">`, the `X-Robots-Tag` header).

Links are read from the whole page, navigation included (a help centre's menu is how its pages are found),
though the HTML loader drops navigation from the indexed text. `<base href>` is honoured; `rel="nofollow"`
links and non-http(s) links (`mailto:`, `javascript:`) are passed over. Uses the standard library's
tolerant, pure-Python HTML tokenizer: no C parser runs on a page here (the indexed text is parsed in the
sandboxed worker). Pure: text in, addresses out.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

from ingest.crawl.urls import canonical_url

MAX_LINKS = 5_000  # per page; a page listing more is a directory the sitemap should carry


@dataclass(frozen=True)
class PageLinks:
    links: tuple[str, ...] = ()  # canonical, in page order, each once
    canonical: str | None = None  # the page's <link rel="canonical">, canonical form
    index: bool = True  # false: the page asks not to be indexed (noindex / none)
    follow: bool = True  # false: the page asks that its links not be followed (nofollow / none)


class _LinkParser(HTMLParser):
    def __init__(self, agent: str):
        super().__init__(convert_charrefs=True)
        self.agent = agent.lower()
        self.base: str | None = None
        self.hrefs: list[str] = []
        self.canonical: str | None = None
        self.directives: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and self.base is None and a.get("href"):
            self.base = a["href"]
        elif tag in ("a", "area") and a.get("href") and "nofollow" not in a.get("rel", "").lower().split():
            if len(self.hrefs) < MAX_LINKS:
                self.hrefs.append(a["href"])
        elif tag == "link" and "canonical" in a.get("rel", "").lower().split() and a.get("href"):
            self.canonical = self.canonical or a["href"]
        elif tag == "meta" and a.get("name", "").lower() in ("robots", self.agent):
            self.directives.update(robots_directives(a.get("content", "")))

    handle_startendtag = handle_starttag


def robots_directives(value: str) -> set[str]:
    """The directives of a robots meta tag or X-Robots-Tag value ("noindex, nofollow"), lower case."""
    return {d.strip().lower() for d in value.split(",") if d.strip()}


def read_links(html: str, url: str, agent: str = "kefubot") -> PageLinks:
    """Links, canonical address and robots directives of an HTML page fetched from `url` (canonical)."""
    parser = _LinkParser(agent)
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # the tokenizer gives up on some malformed markup: keep what it read
        pass
    base = canonical_url(parser.base, url) if parser.base else url
    base = base or url
    seen: dict[str, None] = {}
    for href in parser.hrefs:
        link = canonical_url(href, base)
        if link is not None and link != url:
            seen.setdefault(link, None)
    canonical = canonical_url(parser.canonical, base) if parser.canonical else None
    d = parser.directives
    return PageLinks(
        links=tuple(seen),
        canonical=canonical,
        index=not ({"noindex", "none"} & d),
        follow=not ({"nofollow", "none"} & d),
    )
