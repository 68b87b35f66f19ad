"""`kefu users`: staff accounts of the web app (agents and admins; customers need none).

Passwords come from a hidden prompt (asked twice) or, when standard input is not a terminal, from its first
line (`printf '%s\\n' "$PASSWORD" | kefu users add anna --role agent`); never from an argument, where they would
land in the shell's history and the process list, and they are never printed. `kefu users demo` is the one
exception by design: it makes random passwords for the demo accounts `make run` offers and prints them once.
"""

from __future__ import annotations

import sys

import click

from app.access.auth import STAFF_ROLES
from app.cli.base import get_service, main, print_json
from app.errors import InputError


def read_password(confirm: bool = True) -> str:
    """A password from a hidden prompt (twice) or from standard input's first line when it is not a terminal."""
    if sys.stdin is not None and sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    line = sys.stdin.readline() if sys.stdin is not None else ""
    password = line.rstrip("\r\n")
    if not password:
        raise InputError("no password on standard input: pipe it in (one line) or run the command in a terminal")
    return password


@main.group()
def users() -> None:
    """Staff accounts of the web app: agents and admins."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(STAFF_ROLES), required=True, help="agent: the desk and batch FAQ; admin: everything.")
@click.option("--json", "as_json", is_flag=True, help="Print the account as JSON.")
def add(name: str, role: str, as_json: bool) -> None:
    """Add a staff account; the password is asked for (or read from standard input)."""
    record = get_service().add_user(name, role, read_password())
    if as_json:
        print_json(record.to_dict())
    else:
        click.echo(f"Added {record.role} {record.name}. They sign in at the web app's Sign in page.")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print {"users": [{"name", "role", "disabled", ...}]}.')
def list_users(as_json: bool) -> None:
    """List staff accounts."""
    records = get_service().users()
    if as_json:
        print_json({"users": [r.to_dict() for r in records]})
        return
    if not records:
        click.echo("No staff accounts yet: add one with `kefu users add NAME --role admin`.")
        return
    for r in records:
        state = "disabled" if r.disabled else "active"
        click.echo(f"{r.name:<24} {r.role:<6} {state:<8} last sign-in {r.last_login_at or 'never'}")


@users.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Disable an account: it cannot sign in, and its open sign-ins end at their next request."""
    get_service().set_user_disabled(name, True)
    click.echo(f"Disabled {name}.")


@users.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Enable a disabled account again."""
    get_service().set_user_disabled(name, False)
    click.echo(f"Enabled {name}.")


@users.command("password")
@click.argument("name")
def password(name: str) -> None:
    """Give an account a new password (asked for, or read from standard input)."""
    get_service().set_user_password(name, read_password())
    click.echo(f"New password set for {name}.")


@users.command("demo")
def demo() -> None:
    """Create the demo admin and agent (or give them new random passwords) and print their credentials."""
    made = get_service().demo_users()
    click.echo("Demo accounts for this knowledge base (new passwords each time; `kefu users disable NAME` ends them):")
    for name, role, secret in made:
        click.echo(f"  {role:<6} {name:<12} password: {secret}")
