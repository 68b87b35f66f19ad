"""Commands over the knowledge base: `kefu ingest`, `kefu search`, `kefu docs`, `kefu index`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from app.answering.evaluation import read_queries, write_trec_run
from app.cli.base import ProgressBar, get_service, main, note_if_empty, print_json
from app.errors import InputError


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--prune", is_flag=True, help="Also delete documents whose files under these paths (or pages of these sites) are gone.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-file report as JSON.")
@click.option("--collection", default="default", show_default=True, help="Collection the documents belong to (a search filter).")
@click.option("--audience", default="public", show_default=True, help="Who may see them; answers quote only KEFU_ANSWER_AUDIENCES.")
def ingest(paths: tuple[str, ...], prune: bool, as_json: bool, collection: str, audience: str) -> None:
    """Index files and folders (.md .txt .html .pdf .docx, FAQ .csv/.xlsx, .jsonl; scans .png .jpg .tiff .webp
    read by OCR) into the knowledge store, and crawl websites given as http(s):// URLs (kept in `kefu sources
    list`)."""
    service = get_service()
    targets = [p if p.lower().startswith(("http://", "https://")) else Path(p) for p in paths]
    report = show_report(
        lambda on_file, bar: service.ingest(targets, prune=prune, on_file=on_file, on_progress=bar.files,
                                            collection=collection, audience=audience),
        as_json, prune,
    )  # fmt: skip
    if report.summary["failed"]:
        sys.exit(1)


def show_report(run, as_json: bool, prune: bool):
    """Run an ingest (`run(on_file, bar)`), printing each file or page as it is done (or the JSON report at the
    end), what was pruned, each crawl's summary and the totals; returns the report."""
    status_colour = {"indexed": "green", "unchanged": None, "failed": "red", "skipped": "yellow"}
    bar = ProgressBar()

    def show(result) -> None:
        if as_json:
            return
        line = f"{result.status:<9} {result.path}"
        if result.status in ("indexed", "unchanged"):
            docs = len(result.doc_ids)
            line += f"  ({docs} document{'s' * (docs != 1)}, {result.chunks} chunks)"
        if result.error:
            line += f"  {result.error}"
        bar.clear()
        click.secho(line, fg=status_colour.get(result.status))

    try:
        report = run(show, bar)
    finally:
        bar.clear()
    if as_json:
        print_json(report.to_dict())
        return report
    for doc_id in report.pruned:
        click.secho(f"pruned    {doc_id}  (its file or page is gone)", fg="yellow")
    for site in report.sites:
        state = "complete" if site["complete"] else f"incomplete: {site['stopped']}"
        click.echo(f"crawled   {site['scope']}  ({site['requests']} requests, {state})")
        for note in site["notes"]:
            click.secho(f"          {note}", fg="yellow")
    s = report.summary
    pages = sum(site["pages"] for site in report.sites)
    noun = "files" if not pages else "pages" if pages == s["files"] else "files and pages"
    click.echo(
        f"{s['files']} {noun}: {s['indexed']} indexed, {s['unchanged']} unchanged, {s['failed']} failed, "
        f"{s['skipped']} skipped; {s['documents']} documents, {s['chunks']} chunks written"
        + (f"; {s['pruned']} pruned" if prune else "")
        + f" in {s['seconds']} s"
    )
    return report


# -- search -------------------------------------------------------------------------------------------------


@main.command()
@click.argument("query", required=False)
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 10_000), help="Results to return.")
@click.option("--mode", type=click.Choice(["hybrid", "lexical", "dense"]), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option("--queries", type=click.Path(path_type=Path, exists=True, dir_okay=False), help="JSONL of queries (_id/id, text) for a batch run.")
@click.option("--run", "run_path", type=click.Path(path_type=Path, dir_okay=False), help="With --queries: write a TREC run file here.")
@click.option("--collection", "collections", multiple=True, help="Only this collection (repeat for several).")
@click.option("--audience", "audiences", multiple=True, help="Only documents for this audience (repeat for several).")
@click.option("--language", "languages", multiple=True, help="Only chunks in this language, e.g. en or zh (repeat for several).")
def search(
    query: str | None,
    k: int,
    mode: str,
    as_json: bool,
    queries: Path | None,
    run_path: Path | None,
    collections: tuple[str, ...],
    audiences: tuple[str, ...],
    languages: tuple[str, ...],
) -> None:
    """Search the knowledge base, or run a batch of queries into a TREC run file."""
    from rag.store import SearchFilter  # the answer path (numpy): imported only by the commands that search

    filters = SearchFilter(collections=collections or None, audiences=audiences or None, languages=languages or None)
    if queries is not None:
        if query:
            raise InputError("give either a QUERY or --queries, not both")
        if run_path is None:
            raise InputError("--queries needs --run OUT.trec to say where to write the run")
        _search_batch(queries, run_path, k, mode, as_json, filters or None)
        return
    if run_path is not None:
        raise InputError("--run needs --queries Q.jsonl")
    if not query or not query.strip():
        raise InputError("give a QUERY to search for, or --queries Q.jsonl --run OUT.trec")
    service = get_service()
    hits = service.search(query, k=k, mode=mode, filters=filters or None)
    if not hits:
        note_if_empty(service)
    if as_json:
        print_json({"query": query, "mode": mode, "results": [h.to_dict() for h in hits]})
        return
    if not hits:
        click.echo("No results.")
    for rank, hit in enumerate(hits, start=1):
        c = hit.chunk
        where = f"{c.title} > {c.section}" if c.section and c.section != c.title else c.title
        click.secho(f"{rank:>2}. {where}", bold=True, nl=False)
        click.echo(f"  [{hit.score_kind} {hit.score:.4f}]  {c.source}  ({c.chunk_id})")
        snippet = " ".join(c.text.split())
        click.echo(f"    {snippet[:200]}{'…' if len(snippet) > 200 else ''}")


def _search_batch(queries_path: Path, run_path: Path, k: int, mode: str, as_json: bool, filters) -> None:

    queries = read_queries(queries_path)
    started = time.perf_counter()
    run = get_service().search_run(queries, k=k, mode=mode, filters=filters)
    seconds = time.perf_counter() - started
    try:
        run_path.parent.mkdir(parents=True, exist_ok=True)
        with run_path.open("w", encoding="utf-8") as out:
            lines = write_trec_run(run, out)
    except OSError as exc:
        raise InputError(f"cannot write the run file {run_path}: {exc.strerror or exc}") from None
    summary = {"queries": len(queries), "lines": lines, "run": str(run_path), "seconds": round(seconds, 2), "mode": mode}
    if as_json:
        print_json(summary)
    else:
        click.echo(f"{len(queries)} queries, {lines} lines written to {run_path} in {seconds:.1f} s")


# -- documents ----------------------------------------------------------------------------------------------


@main.group()
def docs() -> None:
    """List and delete indexed documents."""


@docs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the documents as JSON.")
def docs_list(as_json: bool) -> None:
    """List indexed documents."""
    service = get_service()
    documents = service.documents()
    if as_json:
        print_json({
            "documents": [{**d.to_dict(), "instruction_like": d.metadata.get("instruction_like", 0)} for d in documents],
            "stats": service.stats(),
        })  # fmt: skip
        return
    if not documents:
        click.echo("The knowledge base is empty.")
        note_if_empty(service)
        return
    for d in documents:
        labels = "" if (d.collection, d.audience) == ("default", "public") else f"  [{d.collection}/{d.audience}]"
        flagged = d.metadata.get("instruction_like")
        warning = f"  ⚠ {flagged} instruction-like sentence{'s' * (flagged != 1)} (never quoted)" if flagged else ""
        click.echo(f"{d.doc_id:<32} {d.kind:<7} {d.language or '-':<6} {d.chunks:>4} chunks  {d.title}  ({d.source}){labels}{warning}")
    click.echo(f"{len(documents)} documents, {sum(d.chunks for d in documents)} chunks")


@docs.command("delete")
@click.argument("doc_ids", nargs=-1)
@click.option("--all", "delete_all", is_flag=True, help="Delete every document.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation with --all.")
def docs_delete(doc_ids: tuple[str, ...], delete_all: bool, yes: bool) -> None:
    """Delete documents (and their chunks) by id."""
    service = get_service()
    if delete_all:
        if doc_ids:
            raise InputError("give document ids or --all, not both")
        ids = [d.doc_id for d in service.documents()]
        if ids and not yes:
            click.confirm(f"Delete all {len(ids)} documents?", abort=True)
    elif not doc_ids:
        raise InputError("give the ids of the documents to delete (see `kefu docs list`), or --all")
    else:
        ids = list(doc_ids)
    deleted = service.delete_documents(ids)
    click.echo(f"Deleted {deleted} document{'s' * (deleted != 1)}.")


# -- index maintenance --------------------------------------------------------------------------------------


@main.group()
def index() -> None:
    """Rebuild the knowledge store's index, or move its contents between stores."""


@index.command("rebuild")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def index_rebuild(as_json: bool) -> None:
    """Rebuild the index; re-embed when the embedding models, their scope or the analysis changed. Searches keep
    working on the old index until the new one is complete (Elasticsearch: a fresh index, then an alias swap)."""
    bar = ProgressBar()
    try:
        result = get_service().rebuild_index(on_progress=lambda done, total: bar.draw(done, total, "documents re-embedded"))
    finally:
        bar.clear()
    if as_json:
        print_json(result)
        return
    if result.get("reembedded"):
        made = ", ".join(f"{n:,} by {model}" for model, n in result["vectors_embedded"].items()) or "none"
        click.echo(f"Re-embedded {result['documents']:,} documents: vectors made {made}; {result['vectors_reused']:,} kept.")
    if result["store"] == "elasticsearch":
        if result["new_index"] is None:
            click.echo(f"Nothing to rebuild: the alias {result['alias']} has no index yet.")
        else:
            click.echo(f"Copied {result['rows']} rows from {result['old_index']} into {result['new_index']}; "
                       f"{result['alias']} now points at it.")  # fmt: skip
    else:
        click.echo(f"Rebuilt {result['path']}: {result['bytes_before']:,} → {result['bytes_after']:,} bytes.")


@index.command("export")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def index_export(path: Path, as_json: bool) -> None:
    """Write every document, chunk and vector to a JSONL file (for `kefu index import`)."""
    result = get_service().export_index(path)
    if as_json:
        print_json(result)
    else:
        click.echo(f"Exported {result['documents']} documents, {result['chunks']} chunks to {result['path']}.")


@index.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def index_import(path: Path, as_json: bool) -> None:
    """Read a `kefu index export` file into the configured store (KEFU_STORE); nothing is re-embedded."""
    result = get_service().import_index(path)
    if as_json:
        print_json(result)
    else:
        click.echo(f"{result['documents']} documents in {result['path']}: {result['indexed']} imported, "
                   f"{result['unchanged']} unchanged, {len(result['failed'])} failed.")  # fmt: skip
        for failure in result["failed"]:
            click.secho(f"failed   {failure['doc_id']}  {failure['error']}", fg="red")
    if result["failed"]:
        sys.exit(1)
