"""`kefu serve` (the HTTP API) and `kefu keys` (its API keys).

`kefu serve` starts `python -m api` in this process's place (as `kefu ui` starts `python -m ui`), so the CLI
never imports FastAPI or uvicorn. `kefu keys create` prints the new key once, as the last line of its output
(scripts take it with `tail -n 1`); only its hash is stored, so it can never be shown again.
"""

from __future__ import annotations

import os
import sys

import click

from app.access.auth import ROLES
from app.cli.base import get_service, main, print_json
from app.settings import load_settings


@main.command()
@click.option("--host", default=None, help="Address to listen on (default KEFU_SERVE_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default KEFU_SERVE_PORT, 8080).")
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help="Worker processes (default KEFU_SERVE_WORKERS, 1).")  # fmt: skip
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Start the HTTP API: OpenAI-compatible /v1/chat/completions, REST under /api/v1, docs at /docs."""

    settings = load_settings().serve
    host, port = host or settings.serve_host, port or settings.serve_port
    workers = workers or settings.serve_workers
    click.echo(f"Kefu's API is starting on http://{host}:{port} (docs at /docs)", err=True)
    argv = [sys.executable, "-m", "api", "--host", host, "--port", str(port), "--workers", str(workers)]
    os.execv(sys.executable, argv)


@main.group()
def keys() -> None:
    """API keys of the HTTP API (`Authorization: Bearer <key>`)."""


@keys.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="customer: chat and own conversations; agent: the desk; admin: everything.")  # fmt: skip
@click.option("--label", default=None, help="A name to recognise the key by (a site, a bot, a person).")
def create(role: str, label: str | None) -> None:
    """Create a key; it is printed once, as the last line (only its hash is kept)."""
    made = get_service().create_key(role, label)
    r = made.record
    click.echo(f"Created {r.role} key {r.id} (prefix {r.prefix}{', ' + r.label if r.label else ''}). "
               "Keep it now: it cannot be shown again.")  # fmt: skip
    click.echo(made.key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print {"keys": [{"id", "prefix", "role", "label", ...}]}.')
def list_keys(as_json: bool) -> None:
    """List keys (never their secrets)."""
    records = get_service().keys()
    if as_json:
        print_json({"keys": [r.to_dict() for r in records]})
        return
    if not records:
        click.echo("No API keys yet: create one with `kefu keys create --role customer`.")
        return
    for r in records:
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        click.echo(f"{r.id:>4} {r.prefix} {r.role:<8} {(r.label or '-'):<24} {state}; last used {r.last_used_at or 'never'}")


@keys.command("revoke")
@click.argument("which", metavar="ID|PREFIX")
def revoke(which: str) -> None:
    """Revoke a key: every request with it is refused from now on."""
    r = get_service().revoke_key(which)
    click.echo(f"Revoked key {r.id} (prefix {r.prefix}).")
