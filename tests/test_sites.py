"""Crawling a help centre into the knowledge base, end to end through `kefu`: a local site served from the test
(tests/web_site.py), the real store, the real packaged embedding model. Delays and limits come from KEFU_CRAWL_*
settings, small so the tests are fast."""

from __future__ import annotations

import pytest
from web_site import Route, Site, article, help_centre

from tests.conftest import kefu, kefu_json


@pytest.fixture
def help_site(monkeypatch):
    monkeypatch.setenv("KEFU_CRAWL_DELAY", "0")
    monkeypatch.setenv("KEFU_CRAWL_TIMEOUT", "0.5")
    monkeypatch.setenv("KEFU_CRAWL_MAX_PAGE_MB", "0.25")
    with Site() as site, Site() as outside:
        help_centre(site, outside, huge_bytes=600 * 1024, slow_s=1.5)
        yield site, outside


def store_generation() -> int:
    from app.components import Components

    components = Components()
    try:
        return components.store.generation()
    finally:
        components.close()


def statuses(report) -> dict[str, tuple[str, str | None]]:
    return {f["path"]: (f["status"], f["error"]) for f in report["files"]}


def test_kefu_ingest_a_url_crawls_the_site_and_answers_cite_its_pages(help_site):
    site, outside = help_site
    s = site.url
    report = kefu_json("ingest", s + "/help/", expect=1)  # the huge and the slow page failed
    got = statuses(report)
    assert {u for u, (status, _) in got.items() if status == "indexed"} == {
        f"{s}/help/", f"{s}/help/returns", f"{s}/help/shipping", f"{s}/help/shipping-new", f"{s}/help/sitemap-only"}
    assert got[f"{s}/help/private/secret"][0] == "skipped" and "robots.txt" in got[f"{s}/help/private/secret"][1]
    assert got[f"{s}/help/missing"][0] == "skipped" and "404" in got[f"{s}/help/missing"][1]
    assert got[f"{s}/help/away"][0] == "skipped" and "off the site" in got[f"{s}/help/away"][1]
    assert got[f"{s}/help/huge"][0] == "failed" and got[f"{s}/help/slow"][0] == "failed"
    assert outside.requests == [] and site.asked("/help/private/secret") == 0
    for entry in report["files"]:
        assert set(entry) >= {"path", "status", "doc_id", "chunks", "error"}
    (crawl,) = report["sites"]
    assert crawl["complete"] and crawl["start"] == s + "/help/"
    assert report["summary"]["indexed"] == 5 and report["summary"]["failed"] == 2

    documents = {d["source"]: d for d in kefu_json("docs", "list")["documents"]}
    assert f"{s}/help/returns" in documents and not any(src.startswith(outside.url) for src in documents)
    hits = kefu_json("search", "how many days to return an item for a refund", "-k", "3")["results"]
    assert hits[0]["source"] == f"{s}/help/returns"
    assert "30 days" in hits[0]["text"] and "banner" not in hits[0]["text"] and "footer" not in hits[0]["text"]
    answer = kefu_json("ask", "How many days do I have to return an item?")
    assert answer["sources"] and answer["sources"][0]["source"] == f"{s}/help/returns"

    (kept,) = kefu_json("sources", "list")["sources"]
    assert kept["url"] == s + "/help/" and kept["last_sync"]["summary"]["indexed"] == 5


def test_a_resync_writes_nothing_for_unchanged_pages_replaces_changed_ones_and_prunes_gone_ones(help_site):
    site, _ = help_site
    s = site.url
    kefu_json("ingest", s + "/help/", expect=1)
    before = {d["doc_id"]: d["content_hash"] for d in kefu_json("docs", "list")["documents"]}
    generation = store_generation()
    site.requests.clear()

    again = kefu_json("sources", "sync", expect=1)
    got = statuses(again)
    assert {u for u, (status, _) in got.items() if status == "indexed"} == set()
    assert got[f"{s}/help/returns"][0] == "unchanged"
    assert again["summary"]["chunks"] == 0 and again["summary"]["documents"] == 0
    asked = [r for r in site.requests if r.path == "/help/returns"]
    assert asked[0].headers.get("if-none-match") == '"returns-v1"'  # answered 304: nothing read
    assert {d["doc_id"]: d["content_hash"] for d in kefu_json("docs", "list")["documents"]} == before
    assert store_generation() == generation  # not one write to the store

    # A page changes, one disappears, one is no longer linked from anywhere.
    site.page("/help/shipping", article("Shipping", "Orders now ship within 5 business days.", ["/help/"]))
    del site.routes["/help/sitemap-only"]  # 404 now
    site.page("/help/", article("Acme help", "Welcome.", ["/help/returns", "/help/shipping"]))
    synced = kefu_json("sources", "sync")  # without --prune: the gone pages stay
    got = statuses(synced)
    assert got[f"{s}/help/shipping"][0] == "indexed" and got[f"{s}/help/returns"][0] == "unchanged"
    assert synced["pruned"] == []
    assert f"{s}/help/shipping-new" in {d["source"] for d in kefu_json("docs", "list")["documents"]}
    hits = kefu_json("search", "how long does shipping take", "-k", "5")["results"]
    shipping = [h for h in hits if h["source"] == f"{s}/help/shipping"]
    assert shipping and "5 business days" in shipping[0]["text"]
    assert not any("2 business days" in h["text"] for h in hits)

    pruned = kefu_json("sources", "sync", "--prune")
    assert len(pruned["pruned"]) == 2  # sitemap-only (gone) and shipping-new (no longer linked)
    sources = {d["source"] for d in kefu_json("docs", "list")["documents"]}
    assert sources == {f"{s}/help/", f"{s}/help/returns", f"{s}/help/shipping"}


def test_a_crawl_cut_short_never_prunes_pages_it_did_not_reach(help_site, monkeypatch):
    site, _ = help_site
    kefu_json("ingest", site.url + "/help/", expect=1)
    monkeypatch.setenv("KEFU_CRAWL_MAX_PAGES", "2")
    report = kefu_json("ingest", site.url + "/help/", "--prune")
    (crawl,) = report["sites"]
    assert not crawl["complete"] and "page limit" in crawl["stopped"]
    assert report["pruned"] == []


def test_sources_remove_forgets_the_site_and_can_delete_its_pages(help_site):
    site, _ = help_site
    kefu_json("ingest", site.url + "/help/", expect=1)
    out = kefu("sources", "remove", site.url + "/help/", "--delete-documents")
    assert "5 pages deleted" in out
    assert kefu_json("sources", "list")["sources"] == []
    assert kefu_json("docs", "list")["documents"] == []
    assert "no site" in kefu("sources", "remove", site.url + "/help/", expect=1)


def test_a_bad_address_is_a_one_line_error():
    out = kefu("ingest", "https://", expect=1)
    assert "Error:" in out and "not an http" in out


def test_a_pdf_linked_from_the_site_is_read_with_its_page_numbers(monkeypatch):
    from tests.conftest import KB

    monkeypatch.setenv("KEFU_CRAWL_DELAY", "0")
    with Site() as site:
        site.page("/", article("Manuals", "Download the manuals.", ["/files/buds-manual.pdf"]))
        pdf = (KB / "manuals" / "lumen-buds-pro-manual.pdf").read_bytes()
        site.routes["/files/buds-manual.pdf"] = Route(pdf, content_type="application/pdf")
        report = kefu_json("ingest", site.url + "/")
        assert statuses(report)[site.url + "/files/buds-manual.pdf"] == ("indexed", None)
    hits = kefu_json("search", "Lumen Buds Pro", "-k", "5")["results"]
    manual = [h for h in hits if h["source"] == site.url + "/files/buds-manual.pdf"]
    assert manual and manual[0]["page"] == 1
