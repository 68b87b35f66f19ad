"""Crawling a website: a help centre's pages in, one report per page out (`crawler`), with the address rules
(`urls`), robots.txt (`robots`), sitemaps (`sitemaps`), link reading (`links`), HTTP under a size cap, a
deadline and an address policy (`fetch`), and pages made documents with their crawl state (`pages`).

Knows nothing of stores: the app writes the documents and keeps the list of sites.
"""

from ingest.crawl.crawler import (
    FAILED,
    FETCHED,
    GONE,
    NOT_MODIFIED,
    SKIPPED,
    CrawlError,
    Crawler,
    CrawlOptions,
    CrawlSummary,
    KnownPage,
    Page,
)
from ingest.crawl.pages import ORIGIN_WEB, TRUST_WEB, known_pages, page_documents

__all__ = [
    "FAILED", "FETCHED", "GONE", "NOT_MODIFIED", "SKIPPED", "ORIGIN_WEB", "TRUST_WEB", "CrawlError", "Crawler",
    "CrawlOptions", "CrawlSummary", "KnownPage", "Page", "known_pages", "page_documents",
]  # fmt: skip
