"""Crawled pages as documents, and what a stored document remembers of its page for the next crawl.

A fetched page is read by the same loaders as a file (in the sandboxed worker, navigation, headers and footers
dropped by the HTML loader), chunked, and becomes one document whose source is its URL: answers cite the URL
and the chat links to it. Its metadata replaces the file's (`path` would name a temporary file) with the
page's: where it came from, its trust level, and the crawl state the next crawl's conditional request needs
(ETag, Last-Modified, body hash, in-scope links). That state lives and dies with the document: a store that is
emptied, rebuilt or exported keeps no stale ETag that would make a missing page look unchanged.

Trust: `origin` "web" and `trust` "web" mark text a website served, which is less trusted than a file an
admin ingests (no `trust` key): guardrails (quarantine of planted instructions) can hold such text to a
stricter standard.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ingest.crawl.crawler import KnownPage, Page
from ingest.documents import Document
from ingest.pipeline import FileLoader

ORIGIN_WEB = "web"
TRUST_WEB = "web"
# A page linking to more in-scope pages keeps no links and no validators: the next crawl fetches it in full (a 304
# would have to follow links that were not kept), and the metadata every document listing reads stays small.
MAX_STORED_LINKS = 1_000


def page_documents(page: Page, loader: FileLoader, site: str) -> list[Document]:
    """The documents of a fetched page (one, for HTML), identified by its URL; LoadError says why it has none."""
    with tempfile.TemporaryDirectory(prefix="kefu-page-") as folder:
        path = Path(folder) / f"page{page.extension}"
        path.write_bytes(page.body)
        documents = loader.load(path, source=page.url, extension=page.extension)
    for doc in documents:
        doc.metadata = page_metadata(page, site)
    return documents


def page_metadata(page: Page, site: str) -> dict[str, Any]:
    keep = len(page.links) <= MAX_STORED_LINKS
    return {
        "origin": ORIGIN_WEB,
        "trust": TRUST_WEB,
        "url": page.url,
        "site": site,
        "etag": page.etag if keep else None,
        "last_modified": page.last_modified if keep else None,
        "body_sha256": page.body_sha256,
        "links": list(page.links) if keep else [],
    }


def is_web_document(metadata: dict[str, Any]) -> bool:
    return metadata.get("origin") == ORIGIN_WEB and isinstance(metadata.get("url"), str)


def known_page(metadata: dict[str, Any]) -> KnownPage | None:
    """What a stored document remembers of its page, or None for a document that is not a crawled page."""
    if not is_web_document(metadata):
        return None
    links = metadata.get("links") or []
    return KnownPage(
        url=metadata["url"],
        etag=_text(metadata.get("etag")),
        last_modified=_text(metadata.get("last_modified")),
        body_sha256=_text(metadata.get("body_sha256")),
        links=tuple(link for link in links if isinstance(link, str)),
    )


def known_pages(documents: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, KnownPage]:
    """{url: KnownPage} from (doc_id, metadata) pairs of stored documents."""
    known = {}
    for _, metadata in documents:
        page = known_page(metadata)
        if page is not None:
            known[page.url] = page
    return known


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
