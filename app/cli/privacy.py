"""Commands over personal data and accountability: `kefu erase` (a person's conversations, or expired ones) and
`kefu audit` (the audit log)."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from app.cli.base import get_service, main, print_json
from app.errors import InputError


@main.command()
@click.option("--session", "session_id", help="Erase this conversation.")
@click.option("--user", "customer_id", help="Erase every conversation of this customer (their channel's id, or owner).")
@click.option("--expired", is_flag=True, help="Erase conversations older than KEFU_RETENTION_DAYS.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def erase(session_id: str | None, customer_id: str | None, expired: bool, as_json: bool) -> None:
    """Erase a person's conversations with their messages, feedback, knowledge gaps, audit records and cached
    answers (GDPR Art. 17 / PIPL Art. 47), and print what was removed."""
    service = get_service()
    if expired:
        if session_id or customer_id:
            raise InputError("give --expired alone, or one --session ID or --user ID")
        counts = service.purge_expired()
    else:
        counts = service.erase(session_id, customer_id)
    if as_json:
        print_json(counts)
        return
    sessions = counts.pop("sessions", [])
    removed = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
    click.echo(f"Erased {len(sessions)} conversation{'s' * (len(sessions) != 1)}: {removed}.")
    for sid in sessions:
        click.echo(f"  {sid}")


@main.command()
@click.option("--since", default=None, help="Only records on or after this date (YYYY-MM-DD).")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def audit(since: str | None, limit: int, as_json: bool) -> None:
    """The audit log, newest first: one record per turn and per privileged action (sizes and verdicts, never text)."""
    start = None
    if since:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=timezone.utc)
        except ValueError:
            raise InputError(f"--since {since!r} is not a date: use YYYY-MM-DD") from None
    records = get_service().audit_log(start, limit)
    if as_json:
        print_json({"records": records})
        return
    if not records:
        click.echo("The audit log is empty" + (f" since {since}." if since else "."))
    for r in records:
        sizes = f"{r['prompt_chars'] or 0}→{r['answer_chars'] or 0} chars" if r["action"] == "turn" else ""
        flags = " ".join(f"{k}={v}" for k, v in r["verdicts"].items())
        click.echo(
            f"{r['time'][:19].replace('T', ' ')}  {r['action']:<16} {r['actor']:<24} {r['role'] or '':<8} "
            f"{r['session_id'] or '-':<34} {r['mode'] or '':<10} {r['latency_ms'] or 0:>6} ms  "
            f"{r['error_code'] or ''} {sizes} {flags}".rstrip()
        )
