"""Metrics: what Kefu measures about itself, in Prometheus' terms (`prometheus-client`), for `/metrics`.

The answering path reports here as it runs: retrieval time (`app.answering.answerer`), time to first token, decode speed,
prompt and answer tokens (any generator's `GenerationStats`), answer-cache hits and misses (`app.answering.cache`),
the in-process model's queue depth and batch sizes (`inference.scheduler`, wired by `app.components`); the HTTP
API adds request latency by route and answer mode, and GPU memory is read when it is scraped. Nothing here holds
text: only counts, sizes and times.

Several API worker processes share one view when `PROMETHEUS_MULTIPROC_DIR` is set before this module is
imported (`python -m api` does that for `--workers` > 1): each process writes its figures to files there and a
scrape adds them up (`render`). Gauges say how they add up (`livesum`: the sum over live workers).
"""

from __future__ import annotations

import os
import sys

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TOKENS_PER_SECOND_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

REQUEST_SECONDS = Histogram(
    "kefu_request_seconds", "HTTP request latency (to the last byte of a streamed answer), by route and answer mode",
    ["route", "method", "mode"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
REQUESTS = Counter("kefu_requests", "HTTP requests answered, by route and status code", ["route", "method", "status"])
IN_FLIGHT = Gauge("kefu_requests_in_flight", "HTTP requests being handled now", multiprocess_mode="livesum")
REFUSED_BUSY = Counter("kefu_requests_refused_busy", "HTTP requests refused with 503 because the server was busy", ["reason"])
ANSWERS = Counter("kefu_answers", "Answers given, by mode and whether they came from the cache", ["mode", "cached"])
RETRIEVAL_SECONDS = Histogram("kefu_retrieval_seconds", "Time to search and judge the passages of one batch of questions",
                              buckets=LATENCY_BUCKETS)  # fmt: skip
FIRST_TOKEN_SECONDS = Histogram(
    "kefu_time_to_first_token_seconds", "From asking the generator to its first visible text (queueing included)",
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
DECODE_RATE = Histogram("kefu_decode_tokens_per_second", "Generated tokens per second of one answer",
                        buckets=TOKENS_PER_SECOND_BUCKETS)  # fmt: skip
PROMPT_TOKENS = Counter("kefu_prompt_tokens", "Prompt tokens given to the generator")
ANSWER_TOKENS = Counter("kefu_answer_tokens", "Tokens the generator wrote (reasoning included)")
CACHE = Counter("kefu_answer_cache", "Answer-cache lookups, by result: hit, miss, or error (cache unreachable)", ["result"])
QUEUE_DEPTH = Gauge("kefu_generation_queue_depth", "Requests waiting for the in-process model", multiprocess_mode="livesum")
BATCH_SIZE = Histogram("kefu_generation_batch_size", "Requests decoded together in one batch", buckets=BATCH_BUCKETS)
GPU_ALLOCATED = Gauge("kefu_gpu_memory_allocated_bytes", "GPU memory held by tensors (CUDA only)",
                      ["device"], multiprocess_mode="livesum")  # fmt: skip
GPU_RESERVED = Gauge("kefu_gpu_memory_reserved_bytes", "GPU memory reserved by the caching allocator (CUDA only)",
                     ["device"], multiprocess_mode="livesum")  # fmt: skip


def observe_generation(stats) -> None:
    """One generated answer's `inference.generator.GenerationStats`."""
    if stats.first_text_s is not None:
        FIRST_TOKEN_SECONDS.observe(stats.first_text_s)
    if stats.generated_tokens and stats.seconds > 0:
        DECODE_RATE.observe(stats.tokens_per_second)
    PROMPT_TOKENS.inc(stats.prompt_tokens)
    ANSWER_TOKENS.inc(stats.generated_tokens)
    read_gpu_memory()


def observe_batch(rows: int, waiting: int) -> None:
    BATCH_SIZE.observe(rows)
    QUEUE_DEPTH.set(waiting)


def observe_queue(waiting: int) -> None:
    QUEUE_DEPTH.set(waiting)


def read_gpu_memory() -> None:
    """GPU memory of this process, when torch is loaded and has used CUDA (never imports torch itself)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return
    for index in range(torch.cuda.device_count()):
        GPU_ALLOCATED.labels(str(index)).set(torch.cuda.memory_allocated(index))
        GPU_RESERVED.labels(str(index)).set(torch.cuda.memory_reserved(index))


def render() -> tuple[bytes, str]:
    """The exposition text of every Kefu metric (all workers' when they share a folder) and its content type."""
    read_gpu_memory()
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
