"""The SQL database Kefu keeps conversations in: SQLite under KEFU_HOME by default, PostgreSQL (or any
SQLAlchemy URL) when KEFU_DATABASE_URL says so.

This module owns the engine, the schema's migrations and the shape of every transaction; it knows nothing
about what the tables mean (`app.db.schema` declares them, `app.dialogue.sessions` and `app.dialogue.feedback` use them).

- **Migrations** (Alembic, `app/db/migrations/versions`) run when the database is opened, under a lock, so
  several processes starting at once upgrade it once: SQLite takes its write lock (`BEGIN IMMEDIATE`),
  PostgreSQL a transaction-scoped advisory lock. A database already at the newest revision is recognised
  without importing Alembic (it costs a cold `kefu ask` 0.2 s).
- **Transactions**: `read()` for reads; `write()` for anything that writes. On SQLite a write transaction
  starts with `BEGIN IMMEDIATE`: it waits (up to `BUSY_TIMEOUT_MS`) for the one writer allowed at a time
  instead of failing with "database is locked" when a read transaction would later need to write. WAL
  journaling lets readers go on while a writer writes.
- **URLs**: `postgresql://` and `postgres://` use the psycopg 3 driver Kefu installs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.errors import ConfigError

BUSY_TIMEOUT_MS = 30_000
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision id; `tests/test_database.py` checks it against Alembic's head.
HEAD_REVISION = "0007_sign_ins"
_MIGRATION_LOCK_KEY = 0x6B656675  # "kefu": the PostgreSQL advisory lock held while migrating


def normalise_url(url: str) -> str:
    """`postgresql://` → `postgresql+psycopg://` (psycopg 3, which Kefu installs; SQLAlchemy would pick
    psycopg2); other URLs as given."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redacted(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(an unreadable database URL)"


class Database:
    """An engine over KEFU_DATABASE_URL with the schema at the newest revision. Safe to share between threads."""

    def __init__(self, url: str):
        self.url = normalise_url(url)
        try:
            if self.url.startswith("sqlite:///") and self.url != "sqlite:///:memory:":
                Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(self.url, future=True)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_connect)
                event.listen(self.engine, "begin", _sqlite_begin)
            self._writer = self.engine.execution_options(kefu_write=True)
            self._migrate()
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"cannot open the sessions database {redacted(url)}: its driver is not installed ({exc.name}). "
                "For PostgreSQL: pip install 'psycopg[binary]'"
            ) from None
        except (SQLAlchemyError, OSError, ImportError, ArgumentError) as exc:
            raise ConfigError(
                f"cannot open the sessions database {redacted(url)}: {_reason(exc)}. Check KEFU_DATABASE_URL."
            ) from None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; nothing it does is committed."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose work is committed at the end, or rolled back on an error (SQLite: BEGIN IMMEDIATE)."""
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def _migrate(self) -> None:
        if self._revision() == HEAD_REVISION:
            return
        # Alembic takes most of a second to import: only when the schema is behind.
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._writer.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        if self.dialect == "sqlite":
            _owner_only(self.url)

    def _revision(self) -> str | None:
        """The database's Alembic revision, or None for a new database."""
        try:
            with self.engine.connect() as connection:
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            return None

    def close(self) -> None:
        self.engine.dispose()


def _reason(exc: Exception) -> str:
    """The first line of a driver's message, without SQLAlchemy's background links."""
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return message[0] if message else type(exc).__name__


def _owner_only(url: str) -> None:
    """Database files hold conversations: readable and writable by their owner only."""
    path = Path(url.removeprefix("sqlite:///"))
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            os.chmod(candidate, 0o600)
        except OSError:
            pass


def _sqlite_connect(dbapi_connection, _record) -> None:
    # The driver's own transaction handling off: `_sqlite_begin` says how each transaction begins.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at each checkpoint, never corrupt
    cursor.close()


def _sqlite_begin(connection) -> None:
    immediate = connection.get_execution_options().get("kefu_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
