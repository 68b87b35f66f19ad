"""The `kefu` command line: parses arguments, calls `app.services`, prints text or JSON. One module per
group of commands; `base` holds the group, the error boundary and shared helpers."""

from app.cli import answers, conversations, knowledge, privacy, serving, sources, users  # noqa: F401 - importing registers the commands
from app.cli.base import main

__all__ = ["main"]
