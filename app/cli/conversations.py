"""Commands over conversations: `kefu chat` (a terminal chat), `kefu sessions` (the queue, transcripts, and an
agent's actions), `kefu feedback`, `kefu gaps`."""

from __future__ import annotations

import getpass
from datetime import datetime, timezone

import click

from app.access.auth import operator_as
from app.answering.plaintext import preview
from app.cli.answers import print_answer_footer
from app.cli.base import get_service, main, note_if_empty, print_json, sessions_database
from app.errors import USER_ERRORS, InputError

ROLE_LABELS = {"user": "customer", "assistant": "kefu", "agent": "agent", "system": "system"}
CHAT_HELP = (
    "Type your question (English or 中文). /new starts a new conversation, /human asks for a person, "
    "/good or /bad [comment] rates the last answer, /quit leaves."
)


def _agent_option(f):
    return click.option(
        "--agent", default=None, help="Your name as the conversation shows it (default: your login name)."
    )(f)


def _agent(name: str | None) -> str:
    name = (name or "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "agent"


def _waited(since: str | None) -> str:
    if not since:
        return ""
    seconds = int((datetime.now(timezone.utc) - datetime.fromisoformat(since)).total_seconds())
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# -- chat ---------------------------------------------------------------------------------------------------


@main.command()
@click.option("--session", "session_id", help="Continue the conversation with this id.")
def chat(session_id: str | None) -> None:
    """Chat with Kefu in the terminal: answers stream as they are written."""

    service = get_service()
    last_answer_id: int | None = None
    click.secho(CHAT_HELP, dim=True)
    note_if_empty(service)
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            click.echo()
            break
        except UnicodeDecodeError:
            click.secho("That was not readable UTF-8 text: check your terminal's encoding.", fg="red")
            continue
        text = line.strip()
        if not text:
            continue
        command, _, rest = text.partition(" ")
        try:
            if command in ("/quit", "/exit", "/q"):
                break
            if command == "/help":
                click.echo(CHAT_HELP)
            elif command == "/new":
                session_id, last_answer_id = None, None
                click.secho("A new conversation starts with your next message.", dim=True)
            elif command == "/human":
                answer = service.request_human(session_id)
                session_id = answer.session_id
                click.echo(f"kefu> {answer.answer}")
            elif command in ("/good", "/bad"):
                if last_answer_id is None:
                    click.secho("There is no answer to rate yet.", fg="yellow")
                    continue
                service.feedback(last_answer_id, "up" if command == "/good" else "down", rest or None)
                click.secho("Thank you for the feedback.", dim=True)
            elif command.startswith("/"):
                click.secho(f"Unknown command {command}. {CHAT_HELP}", fg="yellow")
            else:
                reply = service.ask_stream(text, session_id=session_id)
                click.echo("kefu> ", nl=False)
                for piece in reply:
                    click.echo(piece, nl=False)
                answer = reply.finish()
                click.echo()
                session_id = answer.session_id
                last_answer_id = answer.message_id or last_answer_id
                print_answer_footer(answer)
        except USER_ERRORS as exc:
            click.secho(f"Error: {exc}", fg="red")
    if session_id:
        click.secho(f"Conversation {session_id} is kept: `kefu chat --session {session_id}` continues it.", dim=True)


# -- sessions -----------------------------------------------------------------------------------------------


@main.group()
def sessions() -> None:
    """Conversations: the agents' queue, transcripts, and an agent's replies."""


@sessions.command("list")
@click.option("--status", type=click.Choice(["bot", "waiting_agent", "with_agent", "resolved"]),
              help="Only conversations in this status; waiting_agent is the queue, oldest first.")  # fmt: skip
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print the conversations as JSON.")
def sessions_list(status: str | None, limit: int, as_json: bool) -> None:
    """List conversations, most recently active first (with --status: longest in that status first)."""
    service = get_service()
    conversations = service.conversations(status, limit)
    if as_json:
        print_json({"sessions": [c.to_dict() for c in conversations]})
        return
    if not conversations:
        click.echo("No conversations" + (f" with status {status}" if status else " yet") + f" ({sessions_database(service)}).")
        return
    rows = [(c.id, c.status, c.agent or "-", _waited(c.status_since) or "-", str(c.messages), preview(c.last_message))
            for c in conversations]  # fmt: skip
    click.echo(_table(("ID", "STATUS", "AGENT", "FOR", "MESSAGES", "LAST MESSAGE"), rows, right=(4,)))


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> str:
    """Rows as aligned columns under a header (the last column unpadded); columns in `right` aligned right."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]

    def line(row: tuple[str, ...]) -> str:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        return "  ".join([*cells, row[-1]]).rstrip()

    return "\n".join(line(r) for r in (header, *rows))


@sessions.command("show")
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True, help="Print the conversation and its messages as JSON.")
def sessions_show(session_id: str, as_json: bool) -> None:
    """Show a conversation: its status, slots and every message with its role, mode and sources."""
    service = get_service()
    conversation = service.conversation(session_id)
    messages = service.history(session_id)
    if as_json:
        print_json({**conversation.to_dict(), "messages": [m.to_dict() for m in messages]})
        return
    agent = f" with {conversation.agent}" if conversation.agent else ""
    click.secho(f"Session {conversation.id}: {conversation.status}{agent}", bold=True)
    if conversation.handoff_reason:
        click.echo(f"Handed over ({conversation.handoff_reason}); {conversation.status} since {conversation.status_since}")
    if conversation.slots:
        click.echo("Slots: " + ", ".join(f"{k}={v}" for k, v in conversation.slots.items()))
    asked = {m.id: m.content for m in messages if m.role == "user"}
    for m in messages:
        who = ROLE_LABELS.get(m.role, m.role) + (f" {m.author}" if m.author and m.role == "agent" else "")
        details = " · ".join(x for x in (m.mode, f"{m.latency_ms} ms" if m.latency_ms is not None else None) if x)
        click.secho(f"\n#{m.id} {who}" + (f"  [{details}]" if details else ""), bold=True)
        click.echo(m.content)
        if m.query and m.role == "assistant" and m.query != asked.get(m.reply_to):
            click.secho(f"  searched: {m.query}", dim=True)
        for i, source in enumerate(m.sources, start=1):
            click.secho(f"  [{i}] {source.get('title', '')} ({source.get('source', '')})", dim=True)


@sessions.command("reply")
@click.argument("session_id")
@click.argument("text")
@_agent_option
def sessions_reply(session_id: str, text: str, agent: str | None) -> None:
    """Reply to the customer as an agent (taking the conversation if nobody has)."""
    message = get_service().agent_reply(session_id, text, actor=operator_as(_agent(agent)))
    click.echo(f"Sent as message {message.id}.")


def _transition(name: str, help_text: str):
    @sessions.command(name, help=help_text)
    @click.argument("session_id")
    @_agent_option
    def command(session_id: str, agent: str | None) -> None:
        conversation = getattr(get_service(), name)(session_id, actor=operator_as(_agent(agent)))
        click.echo(f"Session {session_id} is now {conversation.status}.")

    return command


sessions_take = _transition("take", "Take a conversation from the queue (it is then with you).")
sessions_release = _transition("release", "Hand a conversation back to the assistant.")
sessions_resolve = _transition("resolve", "Mark a conversation resolved.")


# -- feedback and gaps --------------------------------------------------------------------------------------


@main.command()
@click.argument("message_id", type=int)
@click.argument("rating", type=click.Choice(["up", "down"]))
@click.option("--comment", default=None, help="What was good or wrong about the answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored feedback as JSON.")
def feedback(message_id: int, rating: str, comment: str | None, as_json: bool) -> None:
    """Rate an answer helpful (up) or not (down), by its message id (in `kefu ask --json` or `kefu sessions show`)."""
    record = get_service().feedback(message_id, rating, comment)
    if as_json:
        print_json(record.to_dict())
    else:
        click.echo(f"Feedback {rating} on message {message_id} stored" + (" (recorded as a knowledge gap)." if rating == "down" else "."))


@main.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Groups to show.")
@click.option("--since", default=None, help="Only gaps recorded on or after this date (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print the groups as JSON.")
def gaps(limit: int, since: str | None, as_json: bool) -> None:
    """The questions Kefu could not answer (abstained, or marked not helpful), most asked first, grouped by meaning."""
    start = None
    if since:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=timezone.utc)
        except ValueError:
            raise InputError(f"--since {since!r} is not a date: use YYYY-MM-DD") from None
    service = get_service()
    groups = service.gaps(start, limit)
    if as_json:
        print_json({"gaps": [g.to_dict() for g in groups]})
        return
    if not groups:
        click.echo("No open knowledge gaps" + (f" since {since}" if since else "") + f" ({sessions_database(service)}).")
        return
    for rank, g in enumerate(groups, start=1):
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(g.reasons.items()))
        click.secho(f"{rank:>2}. {g.question}", bold=True, nl=False)
        click.echo(f"  ×{g.count} ({reasons}); last {g.last_asked[:16].replace('T', ' ')}")
        for example in g.examples:
            click.secho(f"      also: {example}", dim=True)
