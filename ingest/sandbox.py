"""Parse untrusted files in worker processes under a timeout and a memory cap.

A hostile file (a ZIP bomb that slipped past the directory checks, a PDF that makes a parser loop or eat
memory, a file that crashes a C extension, an image that decodes to gigabytes) can then only fail itself:
the worker is killed or dies, the file is reported `failed` with the reason, a fresh worker takes the next
file, and the process that holds the models and the store is never at risk.

The worker is `python -m ingest.sandbox`: it caps its own address space (RLIMIT_AS), then answers
length-prefixed JSON requests on stdin — a path and `LoadOptions` in, `Document`s with their blocks out (or
an error message). JSON rather than pickle, so a compromised worker cannot make the parent run code. Every
file goes to the parser worker first; a file it answers with `needs_ocr` (an image, a PDF with scanned
pages) goes on to a second worker of the same kind that may run OCR, under the OCR limits
(KEFU_OCR_TIMEOUT, KEFU_OCR_MEMORY_MB) and keeping the OCR models loaded between files. This module knows
loaders and limits; it knows nothing about chunking or storage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from ingest.documents import Block, Document
from ingest.errors import LoadError
from ingest.limits import MB, Limits
from ingest.loaders import LoadOptions
from ingest.ocr import NeedsOcr
from ingest.registry import loader_for

_HEADER = struct.Struct(">I")


def _send(stream: BinaryIO, message: dict[str, Any]) -> None:
    payload = json.dumps(message, ensure_ascii=False).encode("utf-8")
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _receive(stream: BinaryIO) -> dict[str, Any]:
    (length,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    return json.loads(_read_exact(stream, length).decode("utf-8"))


def _options_to_dict(options: LoadOptions) -> dict[str, Any]:
    return dataclasses.asdict(options)


def _options_from_dict(data: dict[str, Any]) -> LoadOptions:
    return LoadOptions(**{**data, "limits": Limits(**data["limits"])})


def _document_from_dict(data: dict[str, Any]) -> Document:
    blocks = [Block(**b) for b in data.pop("blocks")]
    data.pop("chunks", None)
    return Document(**data, blocks=blocks)


@dataclass(frozen=True)
class _Profile:
    """What one kind of worker may spend on a file, and the settings that say so (named in its messages)."""

    job: str  # "parse", "read by OCR"
    memory_mb: int
    timeout_s: float
    memory_setting: str
    timeout_setting: str


class _Worker:
    """One worker process: started on first use, stopped after a timeout, a crash or running out of memory."""

    def __init__(self, profile: _Profile):
        self.profile = profile
        self._process: subprocess.Popen | None = None
        self._stderr: BinaryIO | None = None

    def _start(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._stop()
            package_root = str(Path(__file__).resolve().parent.parent)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
            self._stderr = tempfile.TemporaryFile()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ingest.sandbox", "--memory-mb", str(self.profile.memory_mb),
                 "--memory-setting", self.profile.memory_setting],  # fmt: skip
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
            )
        return self._process

    def _stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            for stream in (self._process.stdin, self._process.stdout):
                if stream:
                    stream.close()
        if self._stderr is not None:
            self._stderr.close()
        self._process, self._stderr = None, None

    def _last_stderr_line(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1][:200] if lines else ""

    def request(self, path: Path, options: LoadOptions) -> dict[str, Any]:
        """The worker's reply for one file; LoadError if the worker times out or dies on it."""
        name, job = options.name_for(path), self.profile.job
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            _send(process.stdin, {"path": str(path), "options": _options_to_dict(options)})
        except (BrokenPipeError, OSError):
            self._stop()
            raise LoadError(f"{name} could not be parsed: the worker stopped before it started") from None
        deadline = time.monotonic() + self.profile.timeout_s
        ready: list = []
        while not ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._stop()
                raise LoadError(
                    f"{name} took longer than {self.profile.timeout_s:.0f} s to {job} and was stopped "
                    f"({self.profile.timeout_setting})"
                )
            ready, _, _ = select.select([process.stdout], [], [], min(remaining, 1.0))
        try:
            reply = _receive(process.stdout)
        except (EOFError, ValueError):
            process.wait()
            detail = self._last_stderr_line()
            self._stop()
            worker = "parser" if job == "parse" else "OCR worker"
            raise LoadError(
                f"{name} crashed the {worker} (exit code {process.returncode}" + (f": {detail}" if detail else "")
                + f"; its memory cap is {self.profile.memory_mb} MB, {self.profile.memory_setting})"
            ) from None
        if reply.get("fatal"):  # out of memory: the worker may be in a bad state
            self._stop()
        return reply

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None and self._process.stdin:
            try:
                self._process.stdin.close()  # EOF: the worker exits by itself
                self._process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._stop()


class ParserSandbox:
    """Parent side: a parser worker for every file, and an OCR worker, with limits of its own, for the files
    the parser says hold pages to read by OCR (images, scanned PDF pages). Each is started on first use and
    replaced after a failure; the OCR worker keeps its models loaded from one file to the next."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._parser = _Worker(
            _Profile("parse", limits.parse_memory_mb, limits.parse_timeout_s, "KEFU_PARSE_MEMORY_MB", "KEFU_PARSE_TIMEOUT")
        )
        self._ocr = _Worker(
            _Profile("read by OCR", limits.ocr_memory_mb, limits.ocr_timeout_s, "KEFU_OCR_MEMORY_MB", "KEFU_OCR_TIMEOUT")
        )

    def __enter__(self) -> ParserSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, path: Path, options: LoadOptions) -> list[Document]:
        """Parse one file in the workers; LoadError with the reason if it fails, times out or dies."""
        reply = self._parser.request(path, replace(options, ocr=False))
        if reply.get("needs_ocr"):
            reply = self._ocr.request(path, replace(options, ocr=True))
        if not reply["ok"]:
            raise LoadError(reply["error"])
        return [_document_from_dict(d) for d in reply["documents"]]

    def close(self) -> None:
        self._parser.close()
        self._ocr.close()


def parse_in_process(path: Path, options: LoadOptions) -> list[Document]:
    """Parse one file here, without isolation, running OCR here too where the file needs it."""
    try:
        return parse_once(path, options)
    except NeedsOcr:
        return parse_once(path, replace(options, ocr=True))


def parse_once(path: Path, options: LoadOptions) -> list[Document]:
    """What a worker does for one request: NeedsOcr when the file holds pages to read by OCR and
    `options.ocr` does not allow it here."""
    loader = loader_for(options.format_for(path))
    if loader is None:
        raise LoadError(f"unsupported file type {Path(options.format_for(path)).suffix or '(none)'!r}")
    try:
        return loader(path, options)
    except LoadError:
        raise
    except OSError as exc:
        raise LoadError(f"{options.name_for(path)} could not be read: {exc.strerror or exc}") from None
    except RecursionError:
        raise LoadError(f"{options.name_for(path)} is nested too deeply to parse") from None


def _serve(memory_mb: int, memory_setting: str) -> None:
    import logging
    import resource
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # pypdf and openpyxl log every oddity of a file; the reply says enough
    limit = memory_mb * MB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Replies go out on a private copy of stdout; whatever a library prints (onnxruntime prints its errors)
    # goes to stderr instead of into the reply stream.
    stdin, stdout = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while True:
        try:
            request = _receive(stdin)
        except EOFError:
            return
        path, options = Path(request["path"]), _options_from_dict(request["options"])
        try:
            documents = parse_once(path, options)
            reply = {"ok": True, "documents": [dataclasses.asdict(d) for d in documents]}
        except NeedsOcr as exc:
            reply = {"ok": False, "needs_ocr": not options.ocr, "error": str(exc)}
        except LoadError as exc:
            reply = {"ok": False, "error": str(exc)}
        except MemoryError:
            reply = {
                "ok": False,
                "fatal": True,
                "error": f"{options.name_for(path)} needs more than {memory_mb} MB of memory to "
                f"{'read by OCR' if options.ocr else 'parse'} and was stopped ({memory_setting})",
            }
        except Exception as exc:  # a parser bug on a strange file: that file fails, the next one is parsed
            reply = {"ok": False, "error": f"{options.name_for(path)} could not be parsed ({type(exc).__name__}: {exc})"}
        try:
            _send(stdout, reply)
        except MemoryError:
            _send(stdout, {"ok": False, "fatal": True, "error": f"{options.name_for(path)} is too large to parse"})


if __name__ == "__main__":
    _serve(int(sys.argv[sys.argv.index("--memory-mb") + 1]), sys.argv[sys.argv.index("--memory-setting") + 1])
