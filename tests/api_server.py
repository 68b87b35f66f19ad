"""A real `kefu serve` (or `python -m api`) on a free loopback port, for the API tests: started as a
subprocess with its own KEFU_* environment, waited for until `/readyz` says ready, stopped at the end. Its
stderr (uvicorn's messages and the `kefu.api` JSON request log) goes to a file the tests read."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

READY_TIMEOUT_S = 180  # a cold start loads the embedding models; generous for a loaded 2-core CI machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**kefu: str) -> dict[str, str]:
    """This process's environment without any KEFU_* variable, plus `kefu`'s (KEFU_ prefixed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_") and k != "PYTEST_CURRENT_TEST"}
    env.update({f"KEFU_{k.upper()}": str(v) for k, v in kefu.items()})
    return env


class ApiServer:
    def __init__(self, env: dict[str, str], workdir: Path, via_cli: bool = True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        module = ["-m", "app.cli", "serve"] if via_cli else ["-m", "api"]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, *module, "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self) -> ApiServer:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the API server was not ready within {READY_TIMEOUT_S} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
