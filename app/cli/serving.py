"""`kefu serve` (the HTTP API) and `kefu keys` (its API keys).

`kefu serve` starts `python -m api` in this process's place (as `kefu ui` starts `python -m ui`), so the CLI
never imports FastAPI or uvicorn. `kefu keys create` prints the new key once, as the last line of its output
(scripts take it with `tail -n 1`); only its hash is stored, so it can never be shown again. A widget key
(`--role widget --origin https://shop.example`) is printed after the one line a site pastes into its pages to
embed the chat widget (`<script src=".../widget.js" data-kefu-key="..." defer></script>`).
"""

from __future__ import annotations

import os
import sys

import click

from app.access.api_keys import KEY_ROLES, WIDGET
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
@click.option("--role", type=click.Choice(KEY_ROLES), required=True,
              help="customer: chat and own conversations; agent: the desk; admin: everything; widget: the website "
                   "chat widget's publishable key (with --origin).")  # fmt: skip
@click.option("--origin", "origins", multiple=True, metavar="URL",
              help="A widget key's site, e.g. https://shop.example (repeat for more); its pages may use the widget.")  # fmt: skip
@click.option("--label", default=None, help="A name to recognise the key by (a site, a bot, a person).")
def create(role: str, origins: tuple[str, ...], label: str | None) -> None:
    """Create a key; it is printed once, as the last line (only its hash is kept)."""
    made = get_service().create_key(role, label, list(origins))
    r = made.record
    named = f"prefix {r.prefix}{', ' + r.label if r.label else ''}"
    if r.role == WIDGET:
        base = load_settings().serve.public_base
        click.echo(f"Created widget key {r.id} ({named}) for {', '.join(r.origins)}. It is publishable (safe in page "
                   "source) and cannot be shown again. Paste this line into the site's pages (KEFU_PUBLIC_URL sets the address):")  # fmt: skip
        click.echo(f'<script src="{base}/widget.js" data-kefu-key="{made.key}" defer></script>')
    else:
        click.echo(f"Created {r.role} key {r.id} ({named}). Keep it now: it cannot be shown again.")
    click.echo(made.key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print {"keys": [{"id", "prefix", "role", "label", "origins", ...}]}.')
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
        origins = f"; origins {' '.join(r.origins)}" if r.origins else ""
        click.echo(f"{r.id:>4} {r.prefix} {r.role:<8} {(r.label or '-'):<24} {state}; last used {r.last_used_at or 'never'}{origins}")


@keys.command("revoke")
@click.argument("which", metavar="ID|PREFIX")
def revoke(which: str) -> None:
    """Revoke a key: every request with it is refused from now on."""
    r = get_service().revoke_key(which)
    click.echo(f"Revoked key {r.id} (prefix {r.prefix}).")
