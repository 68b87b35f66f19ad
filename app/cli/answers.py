"""Commands that answer: `kefu ask`, `kefu llm`, `kefu ui`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from app.answering.evaluation import read_queries
from app.cli.base import ProgressBar, get_service, main, note_if_empty, print_json
from app.errors import InputError
from app.settings import load_settings

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
    service = get_service()
    reply = service.ask_stream(question, session_id=session_id)
    if as_json:
        answer = reply.finish()
        print_json(answer.to_dict())
    else:
        for piece in reply:
            click.echo(piece, nl=False)
        answer = reply.finish()
        click.echo("\n")
        print_answer_footer(answer)
    if answer.mode == "abstain":
        note_if_empty(service)


def print_answer_footer(answer) -> None:
    message = f" · message {answer.message_id}" if answer.message_id else ""
    cached = " · cached" if answer.cached else ""
    click.secho(f"[{answer.mode}{cached} · {answer.latency_ms} ms · session {answer.session_id}{message}]", dim=True)
    for i, source in enumerate(answer.sources, start=1):
        where = source["title"] + (f" > {source['section']}" if source.get("section") and source["section"] != source["title"] else "")
        page = f", p. {source['page']}" if source.get("page") else ""
        uncited = "  (given, not cited)" if source.get("cited") is False else ""
        click.echo(f"  [{i}] {where} ({source['source']}{page}){uncited}")


def _ask_batch(path: Path, as_json: bool) -> None:
    items = _read_questions(path)
    service = get_service()
    note_if_empty(service)
    answers = service.ask_batch([text for _, text in items])
    for (qid, text), answer in zip(items, answers):
        if as_json:
            click.echo(json.dumps({"id": qid, "question": text, **answer.to_dict()}, ensure_ascii=False))
        else:
            click.secho(f"{qid}: {text}", bold=True)
            click.echo(answer.answer)
            print_answer_footer(answer)
            click.echo()


def _read_questions(path: Path) -> list[tuple[str, str]]:
    """(id, text): a JSONL file as `kefu search --queries` reads it, else one question per non-empty line."""

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
@click.argument("input_path", metavar="IN", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the answered sheet (.csv or .xlsx).")  # fmt: skip
@click.option("--column", default=None, help="The question column's name (default: question, 问题, q, ...).")
@click.option("--restart", is_flag=True, help="Forget the answers of an interrupted run and start over.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def batch(input_path: Path, output_path: Path, column: str | None, restart: bool, progress: bool | None, as_json: bool) -> None:
    """Answer every question of a CSV/XLSX sheet: the rows come back with answer, mode, confidence, sources and
    error. Interrupted, the same command continues where it stopped."""
    # The answer path (numpy, the store, the models' code) is imported when a command needs it, so that
    # `kefu serve`, `kefu ui` and `--help` start without it.
    from app.answering.batch import run_batch
    from app.knowledge.ingestion import limits_from

    service = get_service()
    note_if_empty(service)
    bar = ProgressBar(enabled=progress, force=bool(progress))

    def show(p) -> None:
        bar.draw(p.done, p.total, "questions" + (f" ({p.resumed} from the interrupted run)" if p.resumed else ""))

    try:
        report = run_batch(service.ask_batch, input_path, output_path, column, restart, limits_from(service.settings),
                           on_progress=show, max_chars=service.settings.guardrails.max_message_chars)  # fmt: skip
    finally:
        bar.clear()
    if as_json:
        print_json(report.to_dict())
        return
    modes = ", ".join(f"{v} {k}" for k, v in sorted(report.modes.items()))
    click.echo(
        f"{report.rows} rows written to {report.output} ({modes}; {report.errors} with errors) in "
        f"{report.seconds:.1f} s" + (f"; {report.resumed} were answered by the interrupted run" if report.resumed else "")
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--load", is_flag=True, help="Also load the model and describe it (device, quantization, cache).")
def llm(as_json: bool, load: bool) -> None:
    """Say which generator answers (what KEFU_LLM=auto chose, and why)."""
    service = get_service()
    status = service.generator_status()
    if load:
        generator = service.load_generator()
        status["model"] = generator.describe() if generator else "none (extractive answers)"
    if as_json:
        print_json(status)
        return
    click.echo(f"{status['backend']}: {status['reason']}")
    if "model" in status:
        click.echo(status["model"])


# -- ui -----------------------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Address to listen on (default KEFU_UI_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default KEFU_UI_PORT, 8501).")
def ui(host: str | None, port: int | None) -> None:
    """Start the Streamlit web app (through `python -m ui`, which sets Streamlit's safe defaults)."""

    settings = load_settings().ui
    host, port = host or settings.ui_host, port or settings.ui_port
    click.echo(f"Kefu is starting on http://{host}:{port}", err=True)
    os.execv(sys.executable, [sys.executable, "-m", "ui", "--host", host, "--port", str(port)])
