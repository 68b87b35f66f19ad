"""Sitemaps (sitemaps.org): the page addresses a `<urlset>` lists and the further sitemaps a `<sitemapindex>`
names, from XML (gzip-compressed or not) or a plain-text list of URLs.

Parsing is safe on hostile input: no entities resolved, no DTD or network access, at most MAX_ENTRIES
addresses, and a gzip file is inflated only up to the size limit the caller gives (a small `.xml.gz` cannot
unpack to gigabytes). Pure: the crawler fetches the files and decides which addresses are in scope.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

MAX_ENTRIES = 50_000  # the protocol's own limit per file


class SitemapError(ValueError):
    """A sitemap that cannot be read; the message says why."""


@dataclass
class Sitemap:
    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)  # from a sitemap index


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise SitemapError(f"not a valid gzip file ({exc})") from None
    if len(out) > max_bytes:
        raise SitemapError(f"unpacks to more than {max_bytes // (1024 * 1024) or 1} MB")
    return out


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def parse_sitemap(data: bytes, max_bytes: int) -> Sitemap:
    """The entries of one sitemap file; SitemapError when it is neither sitemap XML nor a list of URLs."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, max_bytes)
    head = data.lstrip()[:1]
    if head != b"<":
        lines = data.decode("utf-8", errors="replace").splitlines()
        pages = [u.strip() for u in lines if u.strip().startswith(("http://", "https://"))]
        if not pages and any(u.strip() for u in lines):
            raise SitemapError("neither sitemap XML nor a list of URLs")
        return Sitemap(pages=pages[:MAX_ENTRIES])
    from lxml import etree  # here, as in ingest.html: lxml loads only when a sitemap is read

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"not well-formed XML ({exc})") from None
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise SitemapError(f"the root element is <{kind}>, not <urlset> or <sitemapindex>")
    found: list[str] = []
    entry = "url" if kind == "urlset" else "sitemap"
    for el in root:
        if _local(el.tag) != entry:
            continue
        for child in el:
            if _local(child.tag) == "loc" and child.text and child.text.strip():
                found.append(child.text.strip())
                break
        if len(found) >= MAX_ENTRIES:
            break
    return Sitemap(pages=found) if kind == "urlset" else Sitemap(sitemaps=found)
