"""A throwaway PostgreSQL server for the `postgres` test tier, from Debian's `postgresql` package.

`initdb` makes a cluster in a temporary folder (trust authentication, nothing persisted), `pg_ctl` starts it on
a Unix socket in that folder and a free port, with no TCP listener. As root (CI containers), the server runs as
the `postgres` user the package creates, since PostgreSQL refuses to run as root. Each test gets a database of
its own (`create_database`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


def find_bindir() -> Path | None:
    """The folder of initdb/pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--encoding=UTF8", "--no-sync")
        options = f"-F -k {self.root} -c listen_addresses='' -p {self.port} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}&port={self.port}"

    def create_database(self) -> str:
        import psycopg

        name = "kefu_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host=str(self.root), port=self.port, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class ExternalPostgres:
    """KEFU_TEST_DATABASE_URL: an existing server; each test gets a fresh database on it."""

    def __init__(self, url: str):
        self.base = url

    def create_database(self) -> str:
        import psycopg
        from sqlalchemy.engine import make_url

        from app.db.database import normalise_url

        url = make_url(normalise_url(self.base))
        name = "kefu_" + uuid.uuid4().hex[:12]
        params = {"host": url.host or url.query.get("host"), "port": url.port or url.query.get("port"),
                  "user": url.username, "password": url.password, "dbname": url.database or "postgres"}  # fmt: skip
        with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return url.set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        pass
