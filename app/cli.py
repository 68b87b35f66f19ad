"""The `kefu` command line. Parses arguments, calls `app.services`, prints text or JSON.

Errors a user can act on print as one line (`Error: ...`, exit 1); anything unexpected prints a short
message too, unless KEFU_DEBUG=1 (or pytest) asks for the traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from app.errors import USER_ERRORS, InputError, debug_enabled


class _Group(click.Group):
    """Turns user errors into one-line messages at the boundary."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            raise click.ClickException(str(exc)) from exc
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except BrokenPipeError:  # `kefu ... | head`: the reader has gone, which is no error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(0) from None
        except Exception as exc:
            if debug_enabled():
                raise
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {exc} (set KEFU_DEBUG=1 to see the traceback)"
            ) from exc


def _service():
    from app.services import KefuService

    return KefuService()


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kefu")
def main() -> None:
    """Kefu: a self-hosted customer-service assistant that answers from your knowledge base."""


# -- ingest -------------------------------------------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--prune", is_flag=True, help="Also delete documents whose files under these paths are gone.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-file report as JSON.")
@click.option("--collection", default="default", show_default=True, help="Collection the documents belong to (a search filter).")
@click.option("--audience", default="public", show_default=True, help="Who may see them; answers quote only KEFU_ANSWER_AUDIENCES.")
def ingest(paths: tuple[Path, ...], prune: bool, as_json: bool, collection: str, audience: str) -> None:
    """Index files and folders (.md .txt .html .pdf .docx, FAQ .csv/.xlsx, .jsonl) into the knowledge store."""
    service = _service()
    status_colour = {"indexed": "green", "unchanged": None, "failed": "red", "skipped": "yellow"}
    bar = _ProgressBar(enabled=sys.stderr.isatty())

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
        report = service.ingest(
            paths, prune=prune, on_file=show, on_progress=bar.update, collection=collection, audience=audience
        )
    finally:
        bar.clear()
    if as_json:
        _print_json(report.to_dict())
    else:
        for doc_id in report.pruned:
            click.secho(f"pruned    {doc_id}  (its file is gone)", fg="yellow")
        s = report.summary
        click.echo(
            f"{s['files']} files: {s['indexed']} indexed, {s['unchanged']} unchanged, {s['failed']} failed, "
            f"{s['skipped']} skipped; {s['documents']} documents, {s['chunks']} chunks written"
            + (f"; {s['pruned']} pruned" if prune else "")
            + f" in {s['seconds']} s"
        )
    if report.summary["failed"]:
        sys.exit(1)


class _ProgressBar:
    """One line on stderr, redrawn in place: files done of total, documents and chunks written."""

    WIDTH = 24

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.shown = False

    def update(self, p) -> None:
        if not self.enabled:
            return
        filled = int(self.WIDTH * p.files_done / max(1, p.files_total))
        current = Path(p.current).name[:30]
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {p.files_done}/{p.files_total} files · "
            f"{p.documents} documents · {p.chunks} chunks · {current}"
        )
        click.echo("\r" + line[:110].ljust(110), nl=False, err=True)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r" + " " * 110 + "\r", nl=False, err=True)
            self.shown = False


class _CountBar(_ProgressBar):
    """The same line for a count of things done out of a total (a rebuild's documents)."""

    def __init__(self, what: str, enabled: bool):
        super().__init__(enabled)
        self.what = what

    def update(self, done: int, total: int) -> None:  # type: ignore[override]
        if not self.enabled:
            return
        filled = int(self.WIDTH * done / max(1, total))
        click.echo(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:,}/{total:,} {self.what}".ljust(110), nl=False, err=True)
        self.shown = True


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
    from rag.store import SearchFilter

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
    hits = _service().search(query, k=k, mode=mode, filters=filters or None)
    if as_json:
        _print_json({"query": query, "mode": mode, "results": [h.to_dict() for h in hits]})
        return
    if not hits:
        click.echo("No results.")
    for rank, hit in enumerate(hits, start=1):
        c = hit.chunk
        where = f"{c.title} > {c.section}" if c.section and c.section != c.title else c.title
        click.secho(f"{rank:>2}. {where}", bold=True, nl=False)
        click.echo(f"  [{hit.score:.4f}]  {c.source}  ({c.chunk_id})")
        snippet = " ".join(c.text.split())
        click.echo(f"    {snippet[:200]}{'…' if len(snippet) > 200 else ''}")


def _search_batch(queries_path: Path, run_path: Path, k: int, mode: str, as_json: bool, filters) -> None:
    import time

    from app.evaluation import read_queries, write_trec_run

    queries = read_queries(queries_path)
    started = time.perf_counter()
    run = _service().search_run(queries, k=k, mode=mode, filters=filters)
    seconds = time.perf_counter() - started
    try:
        run_path.parent.mkdir(parents=True, exist_ok=True)
        with run_path.open("w", encoding="utf-8") as out:
            lines = write_trec_run(run, out)
    except OSError as exc:
        raise InputError(f"cannot write the run file {run_path}: {exc.strerror or exc}") from None
    summary = {"queries": len(queries), "lines": lines, "run": str(run_path), "seconds": round(seconds, 2), "mode": mode}
    if as_json:
        _print_json(summary)
    else:
        click.echo(f"{len(queries)} queries, {lines} lines written to {run_path} in {seconds:.1f} s")


# -- ask ----------------------------------------------------------------------------------------------------


@main.command()
@click.argument("question", required=False)
@click.option("--session", "session_id", help="Continue (or start) the conversation with this id.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON (with --questions: one JSON line each).")
@click.option(
    "--questions",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Answer every question in this file (one per line, or JSONL with _id/id and text) in one batch.",
)
def ask(question: str | None, session_id: str | None, as_json: bool, questions: Path | None) -> None:
    """Answer a question from the knowledge base, with its sources (streamed as it is written)."""
    if questions is not None:
        if question or session_id:
            raise InputError("give either a QUESTION (with --session) or --questions FILE, not both")
        _ask_batch(questions, as_json)
        return
    if not question:
        raise InputError("give a QUESTION to answer, or --questions FILE")
    reply = _service().ask_stream(question, session_id=session_id)
    if as_json:
        _print_json(reply.finish().to_dict())
        return
    for piece in reply:
        click.echo(piece, nl=False)
    answer = reply.finish()
    click.echo("\n")
    _print_answer_footer(answer)


def _print_answer_footer(answer) -> None:
    click.secho(f"[{answer.mode} · {answer.latency_ms} ms · session {answer.session_id}]", dim=True)
    for i, source in enumerate(answer.sources, start=1):
        where = source["title"] + (f" > {source['section']}" if source.get("section") and source["section"] != source["title"] else "")
        page = f", p. {source['page']}" if source.get("page") else ""
        uncited = "  (given, not cited)" if source.get("cited") is False else ""
        click.echo(f"  [{i}] {where} ({source['source']}{page}){uncited}")


def _ask_batch(path: Path, as_json: bool) -> None:
    items = _read_questions(path)
    answers = _service().ask_batch([text for _, text in items])
    for (qid, text), answer in zip(items, answers):
        if as_json:
            click.echo(json.dumps({"id": qid, "question": text, **answer.to_dict()}, ensure_ascii=False))
        else:
            click.secho(f"{qid}: {text}", bold=True)
            click.echo(answer.answer)
            _print_answer_footer(answer)
            click.echo()


def _read_questions(path: Path) -> list[tuple[str, str]]:
    """(id, text): a JSONL file as `kefu search --queries` reads it, else one question per non-empty line."""
    from app.evaluation import read_queries

    if path.suffix == ".jsonl":
        return read_queries(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read questions file {path}: {exc}") from None
    items = [(str(n), line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not items:
        raise InputError(f"questions file {path} holds no questions")
    return items


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--load", is_flag=True, help="Also load the model and describe it (device, quantization, cache).")
def llm(as_json: bool, load: bool) -> None:
    """Say which generator answers (what KEFU_LLM=auto chose, and why)."""
    service = _service()
    status = service.generator_status()
    if load:
        generator = service.generator
        status["model"] = generator.describe() if generator else "none (extractive answers)"
    if as_json:
        _print_json(status)
        return
    click.echo(f"{status['backend']}: {status['reason']}")
    if "model" in status:
        click.echo(status["model"])


# -- documents ----------------------------------------------------------------------------------------------


@main.group()
def docs() -> None:
    """List and delete indexed documents."""


@docs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the documents as JSON.")
def docs_list(as_json: bool) -> None:
    """List indexed documents."""
    service = _service()
    documents = service.documents()
    if as_json:
        _print_json({"documents": [d.to_dict() for d in documents], "stats": service.stats()})
        return
    if not documents:
        click.echo("The knowledge base is empty. Add files with `kefu ingest PATH`.")
        return
    for d in documents:
        labels = "" if (d.collection, d.audience) == ("default", "public") else f"  [{d.collection}/{d.audience}]"
        click.echo(f"{d.doc_id:<32} {d.kind:<7} {d.language or '-':<6} {d.chunks:>4} chunks  {d.title}  ({d.source}){labels}")
    click.echo(f"{len(documents)} documents, {sum(d.chunks for d in documents)} chunks")


@docs.command("delete")
@click.argument("doc_ids", nargs=-1)
@click.option("--all", "delete_all", is_flag=True, help="Delete every document.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation with --all.")
def docs_delete(doc_ids: tuple[str, ...], delete_all: bool, yes: bool) -> None:
    """Delete documents (and their chunks) by id."""
    service = _service()
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
    bar = _CountBar("documents re-embedded", enabled=sys.stderr.isatty())
    try:
        result = _service().rebuild_index(on_progress=bar.update)
    finally:
        bar.clear()
    if as_json:
        _print_json(result)
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
    result = _service().export_index(path)
    if as_json:
        _print_json(result)
    else:
        click.echo(f"Exported {result['documents']} documents, {result['chunks']} chunks to {result['path']}.")


@index.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def index_import(path: Path, as_json: bool) -> None:
    """Read a `kefu index export` file into the configured store (KEFU_STORE); nothing is re-embedded."""
    result = _service().import_index(path)
    if as_json:
        _print_json(result)
    else:
        click.echo(f"{result['documents']} documents in {result['path']}: {result['indexed']} imported, "
                   f"{result['unchanged']} unchanged, {len(result['failed'])} failed.")  # fmt: skip
        for failure in result["failed"]:
            click.secho(f"failed   {failure['doc_id']}  {failure['error']}", fg="red")
    if result["failed"]:
        sys.exit(1)


# -- ui -----------------------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Address to listen on (default KEFU_UI_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default KEFU_UI_PORT, 8501).")
def ui(host: str | None, port: int | None) -> None:
    """Start the Streamlit web app."""
    from app.settings import load_settings

    settings = load_settings().ui
    import ui as ui_package

    script = Path(ui_package.__file__).resolve().parent / "streamlit_app.py"
    args = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host or settings.ui_host,
        "--server.port", str(port or settings.ui_port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    click.echo(f"Kefu is starting on http://{host or settings.ui_host}:{port or settings.ui_port}", err=True)
    os.execv(sys.executable, args)


if __name__ == "__main__":  # pragma: no cover
    main()
