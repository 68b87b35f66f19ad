"""Websites in the knowledge base: a help centre crawled into the store (`kefu ingest https://...`), the list of
kept sites (`kefu sources list`), and their re-sync (`kefu sources sync`: what a nightly cron job runs).

`ingest.crawl` visits a site's pages; this module writes them through the same write groups as files
(`app.knowledge.ingestion.IngestRun`) and reports each page in the files' report shape, its URL as `path`:
- fetched: read by the sandboxed loaders into one document whose source is the URL: `indexed` when its content
  hash is new (replacing what that page held before, in one write), `unchanged` when not (nothing written);
- not modified (a 304 to the conditional request the page's stored ETag / Last-Modified made): `unchanged`,
  nothing read or written;
- gone (404, 410), disallowed by robots.txt, redirected off the site or out of scope, asking not to be indexed,
  not a type Kefu reads: `skipped`, with the reason;
- failed (a timeout, over the size limit, a 5xx, unreadable): `failed`; what the page held before is kept.
With prune, stored pages of the site are deleted when this crawl saw them gone or skipped, or, after a
complete crawl, when nothing links to them any more (a crawl cut short by a limit cannot tell, and keeps them).

The crawl state (ETag, Last-Modified, body hash, links) lives in each page's document metadata
(`ingest.crawl.pages`), so it goes wherever the document goes and vanishes with it. Pages are marked
`origin: web`, `trust: web`: less trusted than the files an admin ingests. The kept sites are the `sites` table:
URL, collection, audience, who added it, when it was last synced and that sync's summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from app.db.database import Database
from app.db.schema import Site, iso_utc, utcnow
from app.errors import InputError, NotFoundError
from app.knowledge.ingestion import IngestProgress, IngestReport, IngestRun, Ingestion, flag_instructions, labels
from app.settings import Settings
from ingest.crawl import FAILED as PAGE_FAILED
from ingest.crawl import FETCHED, NOT_MODIFIED, Crawler, CrawlError, CrawlOptions, known_pages, page_documents
from ingest.crawl.pages import is_web_document
from ingest.crawl.urls import Scope, canonical_url
from ingest.documents import DEFAULT_AUDIENCE, DEFAULT_COLLECTION
from ingest.errors import LoadError
from ingest.pipeline import FAILED, INDEXED, SKIPPED, UNCHANGED, FileResult
from rag.indexing import Indexer
from rag.store import DocumentInfo

MB = 1024 * 1024


def crawl_options(settings: Settings) -> CrawlOptions:
    """The crawl limits KEFU_CRAWL_* set."""
    c = settings.crawl
    return CrawlOptions(
        max_pages=c.crawl_max_pages,
        max_depth=c.crawl_max_depth,
        max_page_bytes=int(c.crawl_max_page_mb * MB),
        max_seconds=c.crawl_max_seconds,
        timeout=c.crawl_timeout,
        delay=c.crawl_delay,
        user_agent=c.crawl_user_agent,
    )


@dataclass(frozen=True)
class SiteRecord:
    id: int
    url: str
    collection: str
    audience: str
    added_by: str | None
    added_at: str
    last_synced_at: str | None
    last_sync: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _record(row: Site) -> SiteRecord:
    return SiteRecord(row.id, row.url, row.collection, row.audience, row.added_by, iso_utc(row.added_at) or "",
                      iso_utc(row.last_synced_at), row.last_sync)  # fmt: skip


class SiteList:
    """The kept sites, in the `sites` table: one row per start URL (canonical)."""

    def __init__(self, db: Database):
        self.db = db

    def all(self) -> list[SiteRecord]:
        with self.db.read() as s:
            return [_record(r) for r in s.scalars(select(Site).order_by(Site.url))]

    def get(self, url: str) -> SiteRecord:
        with self.db.read() as s:
            row = s.scalars(select(Site).where(Site.url == _canonical(url))).first()
            if row is None:
                raise NotFoundError(f"no site {url} is kept (see `kefu sources list`)")
            return _record(row)

    def keep(self, url: str, collection: str, audience: str, added_by: str | None, summary: dict[str, Any]) -> SiteRecord:
        """Add the site, or update its labels, with the summary of the sync just done."""
        with self.db.write() as s:
            row = s.scalars(select(Site).where(Site.url == url)).first()
            if row is None:
                row = Site(url=url, added_by=added_by, added_at=utcnow())
                s.add(row)
            row.collection, row.audience = collection, audience
            row.last_synced_at, row.last_sync = utcnow(), summary
            s.flush()
            return _record(row)

    def remove(self, url: str) -> SiteRecord:
        with self.db.write() as s:
            row = s.scalars(select(Site).where(Site.url == _canonical(url))).first()
            if row is None:
                raise NotFoundError(f"no site {url} is kept (see `kefu sources list`)")
            record = _record(row)
            s.delete(row)
            return record


def _canonical(url: str) -> str:
    canonical = canonical_url(url)
    if canonical is None:
        raise InputError(f"{url!r} is not an http:// or https:// address")
    return canonical


class SiteIngestion:
    """Crawls sites into the knowledge store through an `Ingestion`'s loader and write groups."""

    def __init__(self, ingestion: Ingestion, sites: Callable[[], SiteList]):
        self.ingestion = ingestion
        self.c = ingestion.c
        self._sites = sites  # the list opens the database only when a site is crawled or listed

    @property
    def sites(self) -> SiteList:
        return self._sites()

    def ingest(
        self,
        url: str,
        prune: bool = False,
        on_file: Callable[[FileResult], None] | None = None,
        on_progress: Callable[[IngestProgress], None] | None = None,
        collection: str = DEFAULT_COLLECTION,
        audience: str = DEFAULT_AUDIENCE,
        added_by: str | None = None,
    ) -> IngestReport:
        """Crawl one site into a collection, for an audience, and keep it in the list of sites."""
        chosen = labels(collection, audience)
        try:
            crawler_scope = Scope.of(url)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        report = self._crawl(crawler_scope.start, prune, chosen, on_file, on_progress)
        self.sites.keep(crawler_scope.start, *chosen, added_by, {"summary": report.summary, "crawl": report.sites[0]})
        return report

    def remove(self, url: str, delete_documents: bool = False) -> tuple[SiteRecord, int]:
        """Stop keeping a site; with delete_documents, delete the pages crawled from it. (record, pages deleted)"""
        record = self.sites.remove(url)
        deleted = 0
        if delete_documents:
            ids = [d.doc_id for docs in self._stored_pages().values() for d in docs if d.metadata.get("site") == record.url]
            deleted = self.c.store.delete_documents(ids) if ids else 0
            self.c.forget_catalogue()
        return record, deleted

    def sync(
        self,
        prune: bool = False,
        on_file: Callable[[FileResult], None] | None = None,
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        """Re-crawl every kept site with its own collection and audience; one report for them all."""
        total = IngestReport()
        for site in self.sites.all():
            total.merge(self.ingest(site.url, prune, on_file, on_progress, site.collection, site.audience, site.added_by))
        return total

    def _stored_pages(self) -> dict[str, list[DocumentInfo]]:
        pages: dict[str, list[DocumentInfo]] = {}
        for doc in self.c.store.list_documents():
            if is_web_document(doc.metadata):
                pages.setdefault(doc.metadata["url"], []).append(doc)
        return pages

    def _crawl(self, url: str, prune: bool, chosen: tuple[str, str], on_file, on_progress) -> IngestReport:
        started = time.perf_counter()
        store = self.c.store
        stored = self._stored_pages()
        # A page stored under other labels is fetched in full, so it can be written under these.
        same_labels = [(d.doc_id, d.metadata) for docs in stored.values() for d in docs
                       if (d.collection, d.audience) == chosen]  # fmt: skip
        try:
            crawler = Crawler(url, crawl_options(self.c.settings), known_pages(same_labels))
        except CrawlError as exc:
            raise InputError(str(exc)) from None
        run = IngestRun(Indexer(store, self.c.spaces, self.c.analyzer), store.delete_documents, 1, on_file, on_progress)
        kept: set[str] = set()  # pages whose documents stay whatever happens
        dropped: set[str] = set()  # pages this crawl saw gone, skipped, or moved
        with self.ingestion.file_loader() as loader:
            for page in crawler.crawl():
                run.total = len(run.report.files) + len(run.pending) + crawler.queued + 1
                if page.requested:
                    dropped.add(page.requested)  # the old address now leads elsewhere
                before = stored.get(page.url, [])
                if page.outcome == FETCHED:
                    kept.add(page.url)
                    try:
                        documents = page_documents(page, loader, crawler.summary.start)
                    except LoadError as exc:
                        run.finish(FileResult(page.url, FAILED, error=str(exc)))
                        continue
                    for doc in documents:
                        doc.collection, doc.audience = chosen
                        flag_instructions(doc)
                    stale = {d.doc_id for d in before} - {d.doc_id for d in documents}
                    run.add(FileResult(page.url, INDEXED), documents, stale)
                elif page.outcome == NOT_MODIFIED:
                    kept.add(page.url)
                    run.finish(FileResult(page.url, UNCHANGED, [d.doc_id for d in before], sum(d.chunks for d in before)))
                elif page.outcome == PAGE_FAILED:
                    kept.add(page.url)
                    run.finish(FileResult(page.url, FAILED, error=page.error))
                else:  # gone, or skipped
                    dropped.add(page.url)
                    run.finish(FileResult(page.url, SKIPPED, error=page.error))
            run.flush()
        report = run.report
        summary = crawler.summary
        if prune:
            scopes = (Scope.of(url), crawler.scope)
            gone = [d.doc_id for page_url, docs in sorted(stored.items()) if page_url not in kept
                    and (page_url in dropped or (summary.complete and any(s.contains(page_url) for s in scopes)))
                    for d in docs]  # fmt: skip
            if gone:
                store.delete_documents(gone)
            report.pruned = gone
        report.sites = [summary.to_dict() | {"pages": len(report.files)}]
        report.seconds = time.perf_counter() - started
        self.c.forget_catalogue()
        return report
