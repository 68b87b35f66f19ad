"""The crawler's pure rules: canonical URLs and scope, the address policy, robots.txt, sitemaps, links."""

from __future__ import annotations

import gzip
import time

import pytest

from ingest.crawl.links import read_links
from ingest.crawl.robots import parse_robots
from ingest.crawl.sitemaps import SitemapError, parse_sitemap
from ingest.crawl.urls import Scope, canonical_url, is_public_address


@pytest.mark.parametrize(
    "url, canonical",
    [
        ("HTTP://Help.Example.COM:80/a/./b/../c#top", "http://help.example.com/a/c"),
        ("https://help.example.com:443", "https://help.example.com/"),
        ("https://h.example/faq?utm_source=mail&b=2&gclid=x&a=1&fbclid=y", "https://h.example/faq?a=1&b=2"),
        ("https://h.example/faq;jsessionid=ABC123?x=%7e", "https://h.example/faq?x=~"),
        ("https://h.example/%7Euser/%2fraw/%61", "https://h.example/~user/%2Fraw/a"),
        ("https://h.example//a//b/", "https://h.example/a/b/"),
        ("https://h.example/退货政策", "https://h.example/%E9%80%80%E8%B4%A7%E6%94%BF%E7%AD%96"),
        ("https://中国.example/", "https://xn--fiqs8s.example/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_one_page_has_one_canonical_address(url, canonical):
    assert canonical_url(url) == canonical
    assert canonical_url(canonical) == canonical  # canonical forms are fixed points


@pytest.mark.parametrize("url", ["mailto:help@acme.example", "javascript:alert(1)", "ftp://h/x", "http://",
                                 "http://h:99999/", "data:text/html,hi", "https://h/" + "a" * 3000])  # fmt: skip
def test_what_is_not_a_web_page_has_no_canonical_address(url):
    assert canonical_url(url) is None


def test_relative_links_resolve_against_the_page():
    assert canonical_url("../returns?b=1&a=2", "https://h.example/help/en/faq") == "https://h.example/help/returns?a=2&b=1"
    assert canonical_url("//other.example/x", "https://h.example/") == "https://other.example/x"


def test_scope_is_the_site_and_the_start_path():
    scope = Scope.of("https://help.example.com/help")
    assert scope.contains("https://help.example.com/help")
    assert scope.contains("https://help.example.com/help/returns")
    assert scope.contains("http://help.example.com/help/returns")  # http and https on default ports: one site
    assert not scope.contains("https://help.example.com/helpdesk")
    assert not scope.contains("https://help.example.com:8443/help/returns")  # another port: another site
    assert not scope.contains("https://evil.example/help/returns")
    assert not scope.contains("https://help.example.com.evil.example/help/")
    assert Scope.of("https://h.example/docs/index.html").prefix == "/docs/"
    assert Scope.of("https://h.example").prefix == "/"


@pytest.mark.parametrize(
    "address, public",
    [("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True), ("127.0.0.1", False), ("10.1.2.3", False),
     ("192.168.0.1", False), ("172.16.5.4", False), ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
     ("::1", False), ("fd00::1", False), ("fe80::1%eth0", False), ("::ffff:10.0.0.1", False), ("224.0.0.1", False),
     ("not an address", False)],
)  # fmt: skip
def test_only_public_addresses_are_public(address, public):
    assert is_public_address(address) is public


ROBOTS = """
# comments and odd spacing are allowed
User-agent: *
Disallow: /private
Allow: /private/open$
Crawl-delay: 3

User-agent: KefuBot/2.0
User-agent: OtherBot
Disallow: /kefu-only
Allow: /kefu-only/public
Disallow: /*.pdf$
Disallow: /search?
Crawl-delay: 0.5

Sitemap: https://h.example/sitemap_index.xml
"""


def test_robots_rules_for_kefubot_longest_match_wins_and_allow_wins_ties():
    robots = parse_robots(ROBOTS, "KefuBot")
    # Our group applies, merged from both of its User-agent lines; the * group does not.
    assert robots.allowed("https://h.example/private")
    assert not robots.allowed("https://h.example/kefu-only/x")
    assert robots.allowed("https://h.example/kefu-only/public/x")
    assert not robots.allowed("https://h.example/manual.pdf") and robots.allowed("https://h.example/manual.pdf?v=2")
    assert not robots.allowed("https://h.example/search?q=refund") and robots.allowed("https://h.example/search")
    assert robots.allowed("https://h.example/robots.txt")
    assert robots.crawl_delay == 0.5 and robots.sitemaps == ["https://h.example/sitemap_index.xml"]
    other = parse_robots(ROBOTS, "SomeBot")  # falls back to *
    assert not other.allowed("https://h.example/private/x") and other.allowed("https://h.example/private/open")
    assert not other.allowed("https://h.example/private/open/more") and other.crawl_delay == 3
    tie = parse_robots("User-agent: *\nDisallow: /page\nAllow: /page\n", "KefuBot")
    assert tie.allowed("https://h.example/page")
    assert parse_robots("User-agent: *\nDisallow:\n", "KefuBot").allowed("https://h.example/anything")
    assert not parse_robots("User-agent: *\nDisallow: /\n", "KefuBot").allowed("https://h.example/")


def test_a_hostile_robots_pattern_does_not_hang_the_crawler():
    robots = parse_robots("User-agent: *\nDisallow: /" + "*a" * 40 + "*b$\n", "KefuBot")
    started = time.perf_counter()
    assert robots.allowed("https://h.example/" + "a" * 2000)
    assert time.perf_counter() - started < 5  # exponential backtracking would take longer than the universe


def test_sitemaps_urlsets_indexes_gzip_and_text():
    urlset = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
              b"<url><loc> https://h.example/a </loc><lastmod>2024-01-01</lastmod></url>"
              b"<url><loc>https://h.example/b</loc></url></urlset>")  # fmt: skip
    assert parse_sitemap(urlset, 1 << 20).pages == ["https://h.example/a", "https://h.example/b"]
    assert parse_sitemap(gzip.compress(urlset), 1 << 20).pages == ["https://h.example/a", "https://h.example/b"]
    index = (b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>https://h.example/s1.xml'
             b"</loc></sitemap></sitemapindex>")  # fmt: skip
    parsed = parse_sitemap(index, 1 << 20)
    assert parsed.sitemaps == ["https://h.example/s1.xml"] and parsed.pages == []
    assert parse_sitemap(b"https://h.example/a\nhttps://h.example/b\n", 1 << 20).pages == ["https://h.example/a", "https://h.example/b"]


def test_hostile_sitemaps_fail_alone():
    bomb = gzip.compress(b"<urlset>" + b" " * (20 << 20) + b"</urlset>")
    with pytest.raises(SitemapError, match="unpacks to more than 1 MB"):
        parse_sitemap(bomb, 1 << 20)
    entity = (b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
              b"<urlset><url><loc>https://h.example/&x;</loc></url></urlset>")  # fmt: skip
    assert all("root:" not in p for p in parse_sitemap(entity, 1 << 20).pages)
    with pytest.raises(SitemapError, match="well-formed"):
        parse_sitemap(b"<urlset><url>", 1 << 20)
    with pytest.raises(SitemapError, match="root element"):
        parse_sitemap(b"<html><body>not a sitemap</body></html>", 1 << 20)


def test_links_canonical_and_robots_meta_are_read_from_the_whole_page():
    html = """<html><head><base href="/help/en/"><link rel="canonical" href="faq">
    <meta name="robots" content="NOINDEX"></head><body>
    <nav><a href="returns">Returns</a> <a href="/help/en/returns#top">again</a></nav>
    <a href="ads" rel="sponsored nofollow">ad</a> <a href="mailto:x@y.example">mail</a>
    <map><area href="shipping"></map> <a href="https://other.example/x">out</a></body></html>"""
    found = read_links(html, "https://h.example/help/en/faq?utm_source=x")
    assert found.links == ("https://h.example/help/en/returns", "https://h.example/help/en/shipping",
                           "https://other.example/x")  # fmt: skip
    assert found.canonical == "https://h.example/help/en/faq"
    assert not found.index and found.follow
    assert not read_links('<meta name="kefubot" content="none"><a href="/x">x</a>', "https://h.example/").follow
