"""The `kefu` command group and what every command shares: the error boundary, JSON output, the service,
a progress bar on stderr.

Errors a user can act on print as one line (`Error: ...`, exit 1); anything unexpected prints a short
message too, unless KEFU_DEBUG=1 (or pytest) asks for the traceback.

A command that finds the knowledge base (or the sessions database) empty says which one it used, on stderr:
KEFU_HOME defaults to `.kefu` in the current folder, so a command run from another folder works on an empty
store of its own, and "no results" alone would not tell why.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from app.errors import USER_ERRORS, debug_enabled, redact


class _Group(click.Group):
    """Turns user errors into one-line messages at the boundary."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            raise click.ClickException(redact(str(exc))) from exc
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
                f"unexpected {type(exc).__name__}: {redact(str(exc))} (set KEFU_DEBUG=1 to see the traceback)"
            ) from exc


def get_service():
    # The service brings the whole answer path (numpy, SQLAlchemy, the store); imported only by the commands that
    # use it, so `kefu serve` and `kefu ui` (which exec another process) and `--help` start without it.
    from app.services import KefuService

    return KefuService()


def _default_home() -> str:
    """Why KEFU_HOME is what it is, when nobody set it (else empty)."""
    return "" if os.environ.get("KEFU_HOME") else "KEFU_HOME is not set, so Kefu used .kefu in the current folder"


def note_if_empty(service) -> bool:
    """When the knowledge base holds no documents, say on stderr which store this command used and how to fill or
    find it; True when it was empty."""
    stats = service.stats()
    if stats.get("documents"):
        return False
    if stats.get("store") == "sqlite":
        store = f"the knowledge base {stats.get('path')}"
    else:
        store = f"the {stats.get('store')} index {stats.get('alias') or ''} at {stats.get('url') or ''}".replace("  ", " ")
    why = f" ({_default_home()})" if _default_home() and stats.get("store") == "sqlite" else ""
    click.secho(f"Note: {store} is empty{why}. Index files with `kefu ingest PATH`, or set KEFU_HOME to the folder "
                "that holds your knowledge base (`make run` uses the repository's .kefu).", err=True, fg="yellow")  # fmt: skip
    return True


def sessions_database(service) -> str:
    """Which sessions database a command used, for saying that it holds nothing (no password shown)."""
    from app.db.database import redacted  # SQLAlchemy's URL parser: only when there is nothing to show

    settings = service.settings
    why = f"; {_default_home()}" if _default_home() and not settings.database.database_url else ""
    return f"sessions database {redacted(settings.database_url)}{why}"


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kefu")
def main() -> None:
    """Kefu: a self-hosted customer-service assistant that answers from your knowledge base."""


class ProgressBar:
    """One line on stderr redrawn in place: a bar, done of total, and what is happening. Off unless stderr is a
    terminal or `force`; when stderr is not a terminal (a log file) each tenth of the way is a line of its own."""

    WIDTH = 24

    def __init__(self, enabled: bool | None = None, force: bool = False):
        self.tty = sys.stderr.isatty()
        self.enabled = force or (self.tty if enabled is None else enabled)
        self.shown = False
        self._logged_tenth = -1

    def draw(self, done: int, total: int, text: str = "") -> None:
        if not self.enabled:
            return
        filled = int(self.WIDTH * done / max(1, total))
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} {text}".rstrip()
        if self.tty:
            click.echo("\r" + line[:110].ljust(110), nl=False, err=True)
            self.shown = True
            return
        tenth = 10 * done // max(1, total)
        if tenth != self._logged_tenth:
            self._logged_tenth = tenth
            click.echo(line, err=True)

    def files(self, p) -> None:
        """An ingest's progress (`app.knowledge.ingestion.IngestProgress`)."""
        self.draw(p.files_done, p.files_total, f"files · {p.documents} documents · {p.chunks} chunks · {Path(p.current).name[:30]}")

    def clear(self) -> None:
        if self.shown:
            click.echo("\r" + " " * 110 + "\r", nl=False, err=True)
            self.shown = False
