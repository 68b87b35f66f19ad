"""The crawler against a real local website (tests/web_site.py): what it visits, what it never asks for, how it
reports each page, and how a re-crawl asks conditionally. Delays and limits are small so the tests are fast."""

from __future__ import annotations

import pytest
from web_site import Route, Site, article, help_centre

from ingest.crawl import FAILED, FETCHED, GONE, NOT_MODIFIED, SKIPPED, Crawler, CrawlError, CrawlOptions, KnownPage

FAST = CrawlOptions(delay=0.0, timeout=0.5, max_page_bytes=256 * 1024, max_seconds=60)


@pytest.fixture
def sites():
    with Site() as site, Site() as outside:
        help_centre(site, outside, huge_bytes=600 * 1024, slow_s=1.5)
        yield site, outside


def crawl(url: str, options: CrawlOptions = FAST, known=None):
    crawler = Crawler(url, options, known)
    pages = list(crawler.crawl())
    return crawler, pages


def by_url(pages):
    found = {}
    for page in pages:
        assert page.url not in found, f"{page.url} reported twice"
        found[page.url] = page
    return found


def test_crawl_visits_linked_and_sitemap_pages_under_the_start_path_and_obeys_the_rules(sites):
    site, outside = sites
    crawler, pages = crawl(site.url + "/help/")
    got = by_url(pages)
    s = site.url
    fetched = {u for u, p in got.items() if p.outcome == FETCHED}
    assert fetched == {f"{s}/help/", f"{s}/help/returns", f"{s}/help/shipping", f"{s}/help/shipping-new",
                       f"{s}/help/sitemap-only"}  # fmt: skip
    # A redirect on the site is followed and reported under where it led.
    assert got[f"{s}/help/shipping-new"].requested == f"{s}/help/moved"
    assert f"{s}/help/moved" not in got
    # robots.txt: the disallowed page is reported and never requested.
    assert got[f"{s}/help/private/secret"].outcome == SKIPPED
    assert "robots.txt" in got[f"{s}/help/private/secret"].error
    assert site.asked("/help/private/secret") == 0
    # Another host: never contacted, neither by a link nor by a redirect nor by a sitemap it lists.
    assert outside.requests == []
    assert got[f"{s}/help/away"].outcome == SKIPPED and f"off the site, to {outside.url}/landing" in got[f"{s}/help/away"].error
    assert not any(u.startswith(outside.url) for u in got)
    # Out of the start path: not visited, even when linked or in the sitemap.
    assert site.asked("/about") == 0 and site.asked("/elsewhere/not-in-scope") == 0
    assert got[f"{s}/help/missing"].outcome == GONE and "404" in got[f"{s}/help/missing"].error
    huge, slow = got[f"{s}/help/huge"], got[f"{s}/help/slow"]
    assert huge.outcome == FAILED and "larger than 0.25 MB" in huge.error and huge.body == b""
    assert slow.outcome == FAILED and "0.5 s" in slow.error
    assert got[f"{s}/help/logo.png"].outcome == SKIPPED and "image/png" in got[f"{s}/help/logo.png"].error
    # One page, one address: fragments, tracking parameters and a copy naming it canonical add nothing.
    assert site.asked("/help/returns") == 1
    assert f"{s}/help/returns-copy" not in got and crawler.summary.duplicates >= 1
    assert not any("utm_" in u or "#" in u for u in got)
    # Every request says who is asking.
    assert all(r.headers["user-agent"].startswith("KefuBot/") for r in site.requests)
    assert crawler.summary.complete and crawler.summary.stopped is None
    # Navigation is how pages are found, but a fetched page carries only in-scope links.
    start = got[f"{s}/help/"]
    assert f"{s}/help/returns" in start.links and not any(link.startswith(outside.url) for link in start.links)
    assert f"{s}/about" not in start.links


def test_a_recrawl_asks_conditionally_and_gets_not_modified_with_the_known_links(sites):
    site, _ = sites
    _, first = crawl(site.url + "/help/")
    returns = by_url(first)[site.url + "/help/returns"]
    assert returns.etag == '"returns-v1"' and returns.body_sha256
    known = {returns.url: KnownPage(returns.url, returns.etag, None, returns.body_sha256, returns.links)}
    site.requests.clear()
    _, second = crawl(site.url + "/help/", known=known)
    again = by_url(second)[site.url + "/help/returns"]
    assert again.outcome == NOT_MODIFIED and again.body == b"" and again.links == returns.links
    asked = [r for r in site.requests if r.path == "/help/returns"]
    assert len(asked) == 1 and asked[0].headers["if-none-match"] == '"returns-v1"'
    # A page changed on the server: the old ETag no longer matches, the page comes back fetched.
    site.routes["/help/returns"].etag = '"returns-v2"'
    _, third = crawl(site.url + "/help/", known=known)
    assert by_url(third)[site.url + "/help/returns"].outcome == FETCHED


def test_pages_only_known_from_a_not_modified_page_are_still_followed():
    with Site() as site:
        site.page("/", article("Home", "Start here.", ["/a"]))
        site.page("/a", article("A", "Page A links on.", ["/b"]), etag='"a1"')
        site.page("/b", article("B", "Page B."))
        _, first = crawl(site.url + "/")
        a = by_url(first)[site.url + "/a"]
        _, second = crawl(site.url + "/", known={a.url: KnownPage(a.url, a.etag, links=a.links)})
        got = by_url(second)
        assert got[site.url + "/a"].outcome == NOT_MODIFIED and got[site.url + "/b"].outcome == FETCHED


def test_the_crawl_stops_at_the_page_and_depth_limits_and_says_it_is_incomplete(sites):
    site, _ = sites
    crawler, pages = crawl(site.url + "/help/", CrawlOptions(delay=0, timeout=0.5, max_pages=2))
    assert sum(1 for p in pages if p.outcome != SKIPPED or "robots" not in (p.error or "")) <= 2
    assert not crawler.summary.complete and "page limit (2)" in crawler.summary.stopped
    crawler, pages = crawl(site.url + "/help/", CrawlOptions(delay=0, timeout=0.5, max_depth=0))
    assert [p.url for p in pages] == [site.url + "/help/"]
    assert crawler.summary.complete  # everything within depth 0 was visited


def test_the_time_limit_stops_a_crawl(sites):
    site, _ = sites
    crawler, pages = crawl(site.url + "/help/", CrawlOptions(delay=0.3, timeout=0.5, max_seconds=0.5))
    assert not crawler.summary.complete and "time limit" in crawler.summary.stopped
    assert 1 <= len(pages) <= 3


def test_requests_are_spaced_by_robots_crawl_delay():
    with Site() as site:
        site.routes["/robots.txt"] = Route("User-agent: kefubot\nCrawl-delay: 0.2\n", content_type="text/plain")
        site.page("/", article("Home", "Start.", ["/a", "/b"]))
        site.page("/a", article("A", "Page A."))
        site.page("/b", article("B", "Page B."))
        crawler, pages = crawl(site.url + "/", CrawlOptions(delay=0.0, timeout=1))
        assert len([p for p in pages if p.outcome == FETCHED]) == 3
        arrivals = [r.at for r in site.requests]
        assert len(arrivals) >= 4  # robots.txt, a sitemap try, three pages
        assert min(b - a for a, b in zip(arrivals, arrivals[1:])) >= 0.19


def test_robots_txt_that_cannot_be_read_stops_the_crawl_and_a_missing_one_allows_all():
    with Site() as site:
        site.routes["/robots.txt"] = Route("busy", status=503, content_type="text/plain")
        site.page("/", article("Home", "Start."))
        crawler, pages = crawl(site.url + "/")
        assert [(p.outcome, p.url) for p in pages] == [(FAILED, site.url + "/")]
        assert "503" in pages[0].error and not crawler.summary.complete
        assert site.asked("/") == 0
        del site.routes["/robots.txt"]  # 404: no rules
        _, pages = crawl(site.url + "/")
        assert [p.outcome for p in pages] == [FETCHED]


def test_a_page_asking_not_to_be_indexed_is_skipped_but_its_links_followed():
    with Site() as site:
        site.page("/", article("Home", "Start.", ["/a"], head='<meta name="robots" content="noindex">'))
        site.page("/a", article("A", "Page A.", ["/b"], head='<meta name="KefuBot" content="nofollow">'))
        site.page("/b", article("B", "Never reached."))
        _, pages = crawl(site.url + "/")
        got = by_url(pages)
        assert got[site.url + "/"].outcome == SKIPPED and "noindex" in got[site.url + "/"].error
        assert got[site.url + "/a"].outcome == FETCHED and site.asked("/b") == 0


def test_the_start_page_moving_moves_the_scope_with_it():
    with Site() as site:
        site.routes["/support"] = Route(status=302, headers={"Location": "/hc/en-us/"})
        site.page("/hc/en-us/", article("Help", "Start.", ["/hc/en-us/faq", "/blog/post"]))
        site.page("/hc/en-us/faq", article("FAQ", "Questions."))
        site.page("/blog/post", article("Blog", "Not help."))
        crawler, pages = crawl(site.url + "/support")
        # The help centre now lives under /hc/en-us/: that is the scope, not the whole site.
        assert {p.url for p in pages if p.outcome == FETCHED} == {site.url + "/hc/en-us/", site.url + "/hc/en-us/faq"}
        assert site.asked("/blog/post") == 0 and crawler.summary.scope == site.url + "/hc/en-us/"


def test_private_addresses_are_refused_unless_the_site_itself_is_on_one():
    with Site() as site:
        site.page("/", article("Home", "Start."))
        # The same loopback site, crawled as if it were a public one that resolves to a private address.
        crawler, pages = crawl(site.url + "/", CrawlOptions(delay=0, timeout=1, allow_private=False))
        assert [p.outcome for p in pages] == [FAILED]
        assert "private, loopback or reserved" in pages[0].error and site.requests == []
        # A public host name whose DNS answer is 127.0.0.1 (as a rebinding attack would make it): refused too.
        port = site.url.rsplit(":", 1)[1]
        answers = iter([["93.184.216.34"]])  # public when the crawl starts, loopback from then on
        crawler = Crawler(f"http://help.example.com:{port}/", FAST, resolve=lambda host, p: next(answers, ["127.0.0.1"]))
        pages = list(crawler.crawl())
        assert pages[0].outcome == FAILED and "127.0.0.1" in pages[0].error and site.requests == []


def test_a_start_address_that_is_not_a_web_page_is_refused():
    for bad in ("ftp://example.com/", "file:///etc/passwd", "help centre", "http://"):
        with pytest.raises(CrawlError, match="not an http"):
            Crawler(bad)


def test_a_fetched_page_becomes_one_document_named_by_its_url_without_navigation(sites):
    from ingest.crawl import page_documents
    from ingest.crawl.pages import known_page
    from ingest.loaders import LoadOptions
    from ingest.pipeline import ChunkingOptions, FileLoader

    site, _ = sites
    _, pages = crawl(site.url + "/help/")
    returns = by_url(pages)[site.url + "/help/returns"]
    with FileLoader(ChunkingOptions(), LoadOptions()) as loader:  # the sandboxed worker, as for files
        (doc,) = page_documents(returns, loader, site=site.url + "/help/")
        (again,) = page_documents(returns, loader, site=site.url + "/help/")
    assert doc.source == returns.url and doc.title == "Returns"
    assert "30 days for a full refund" in doc.text
    assert "banner" not in doc.text and "footer" not in doc.text and "/help/shipping" not in doc.text
    assert doc.doc_id == again.doc_id and doc.content_hash == again.content_hash
    assert doc.metadata["origin"] == "web" and doc.metadata["trust"] == "web" and "path" not in doc.metadata
    state = known_page(doc.metadata)
    assert state.etag == '"returns-v1"' and state.body_sha256 == returns.body_sha256 and state.links == returns.links


def test_a_compressed_bomb_stops_at_the_size_limit_and_a_compressed_page_reads():
    import gzip

    with Site() as site:
        site.page("/", article("Home", "Start.", ["/bomb", "/zipped"]))
        site.routes["/bomb"] = Route(gzip.compress(b"<html><body>" + b"a" * (20 << 20)), headers={"Content-Encoding": "gzip"})
        site.routes["/zipped"] = Route(gzip.compress(article("Zipped", "Compressed but fine.").encode()),
                                       headers={"Content-Encoding": "gzip"})  # fmt: skip
        _, pages = crawl(site.url + "/")
        got = by_url(pages)
        assert got[site.url + "/bomb"].outcome == FAILED and "larger than" in got[site.url + "/bomb"].error
        assert got[site.url + "/zipped"].outcome == FETCHED and b"Compressed but fine." in got[site.url + "/zipped"].body
