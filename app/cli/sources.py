"""Commands over the kept websites: `kefu sources list|sync|remove` (`kefu ingest URL` adds one)."""

from __future__ import annotations

import sys

import click

from app.cli.base import get_service, main, print_json
from app.cli.knowledge import show_report


@main.group()
def sources() -> None:
    """The websites Kefu keeps crawled into the knowledge base (add one with `kefu ingest https://...`)."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the sites as JSON.")
def sources_list(as_json: bool) -> None:
    """List the kept sites, with their labels and last sync."""
    sites = get_service().sites()
    if as_json:
        print_json({"sources": [s.to_dict() for s in sites]})
        return
    if not sites:
        click.echo("No sites are kept. Crawl one with `kefu ingest https://help.example.com/`.")
        return
    for site in sites:
        summary = (site.last_sync or {}).get("summary") or {}
        counts = ", ".join(f"{summary.get(k, 0)} {k}" for k in ("indexed", "unchanged", "failed", "skipped"))
        click.echo(f"{site.url}  [{site.collection}/{site.audience}]  last synced {site.last_synced_at or 'never'}"
                   + (f": {summary.get('files', 0)} pages ({counts})" if summary else ""))  # fmt: skip


@sources.command("sync")
@click.option("--prune", is_flag=True, help="Also delete pages that are gone or no longer linked.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-page report as JSON.")
def sources_sync(prune: bool, as_json: bool) -> None:
    """Re-crawl every kept site (what a nightly cron job runs); unchanged pages write nothing."""
    service = get_service()
    if not service.sites() and not as_json:
        click.echo("No sites are kept. Crawl one with `kefu ingest https://help.example.com/`.")
        return
    report = show_report(lambda on_file, bar: service.sync_sites(prune=prune, on_file=on_file, on_progress=bar.files),
                         as_json, prune)  # fmt: skip
    if report.summary["failed"]:
        sys.exit(1)


@sources.command("remove")
@click.argument("url")
@click.option("--delete-documents", is_flag=True, help="Also delete the pages crawled from it.")
def sources_remove(url: str, delete_documents: bool) -> None:
    """Stop keeping a site (and, with --delete-documents, delete its pages from the knowledge base)."""
    removed, deleted = get_service().remove_site(url, delete_documents=delete_documents)
    click.echo(f"{removed.url} is no longer kept" + (f"; {deleted} pages deleted." if delete_documents else "."))
