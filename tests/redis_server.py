"""A throwaway Redis server for the `redis` test tier, from Debian's `redis-server` package.

`redis-server` runs in a temporary folder on a free loopback port, with nothing persisted (no RDB snapshots, no
append-only file) and no configuration file read; the fixture stops it and removes the folder. Tests get its
URL (`redis://127.0.0.1:PORT/0`) and flush it between uses.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_redis_server() -> str | None:
    """redis-server on PATH, or Debian's /usr/bin/redis-server."""
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, binary: str):
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="kefu-redis-"))
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
            "--logfile", str(self.root / "server.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1.0)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
                raise RuntimeError(f"{' '.join(command)} exited {self.process.returncode}:\n{log}")
            try:
                if client.ping():
                    break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not answer on port {self.port} within 30 s") from None
                time.sleep(0.05)
        client.close()
        return self

    def flush(self) -> None:
        import redis

        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
