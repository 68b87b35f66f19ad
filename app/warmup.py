"""Warm-up: build, in a background thread, every component the answer path needs, so the first customer's answer
starts as fast as every later one.

A cold answer pays for opening the store, loading the embedding model and jieba's dictionary, embedding the
intent examples, opening (and migrating) the sessions database and, with a language model configured, loading
it. `WarmUp.start()` does all of that once, off the request path: it builds the components and then runs one
English and one Chinese question through `Answerer.decide` (retrieve and judge; nothing is stored), which also
runs the embedding model and the analyser once. Components are built under their own locks
(`app.components`), so a question that arrives mid-warm-up waits for the same build instead of starting another.

A failure (an index built with another model, weights that are missing) is kept as `error` for the front end to
show; the first question will then report the same problem to whoever asks. Knows nothing about pages.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from app.errors import USER_ERRORS

if TYPE_CHECKING:
    from app.components import Components

IDLE, WARMING, READY, FAILED = "idle", "warming", "ready", "failed"
PROBES = ("How long do I have to return an item?", "我有多长时间可以退货？")


class WarmUp:
    def __init__(self, components: Components):
        self.components = components
        self.state = IDLE
        self.error: str | None = None
        self.seconds: float | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    def start(self) -> WarmUp:
        """Begin warming up in a daemon thread (once; later calls do nothing)."""
        with self._lock:
            if self.state != IDLE:
                return self
            self.state = WARMING
        threading.Thread(target=self.run, name="kefu-warm-up", daemon=True).start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the warm-up has finished (either way); False on timeout."""
        return self._done.wait(timeout)

    @property
    def ready(self) -> bool:
        return self.state == READY

    def run(self) -> None:

        started = time.perf_counter()
        c = self.components
        try:
            c.check_index()  # the store, the embedding model and the analyser
            c.database
            c.sessions
            c.intents.classify(PROBES[0])
            for probe in PROBES:
                c.answerer.decide(probe)  # retrieval, judging, jieba's dictionary; nothing is stored
            c.dialogue
            if c.generator_status()["backend"] != "extractive":
                c.generator  # the language model, when one writes the answers
            self.state = READY
        except USER_ERRORS as exc:
            self.error, self.state = str(exc), FAILED
        except Exception as exc:  # a warm-up never takes the server down; the first question reports it
            self.error, self.state = f"{type(exc).__name__}: {exc}", FAILED
        finally:
            self.seconds = time.perf_counter() - started
            logging.getLogger(__name__).info("warm-up %s in %.1f s%s", self.state, self.seconds,
                                             f": {self.error}" if self.error else "")  # fmt: skip
            self._done.set()
