"""`python -m api --host H --port P --workers N`: serve Kefu's HTTP API under uvicorn (what `kefu serve` runs).

With several workers each is its own process with its own models; their metrics are added up through a fresh
folder in PROMETHEUS_MULTIPROC_DIR, set here before `app.metrics` is first imported (an operator's own folder
is kept). Logs: one JSON line per request on `kefu.api`; uvicorn's own access log is off (it would repeat them
with the query string, which may hold what a customer searched for).

Client addresses: uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise, so anything on the
same host (or a client behind a proxy there) could name itself any address and dodge the per-address limits.
Here uvicorn believes forwarded headers only from KEFU_TRUSTED_PROXIES, and from nobody by default.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile


def log_config() -> dict:
    """Logging for every worker (uvicorn applies it in each): the `kefu.api` request lines as bare JSON, everything
    else with time, level and logger, on stderr."""
    stderr = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"format": "%(message)s"},
                       "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"requests": {**stderr, "formatter": "json"}, "default": {**stderr, "formatter": "plain"}},
        "loggers": {"kefu.api": {"handlers": ["requests"], "level": "INFO", "propagate": False}},
        "root": {"handlers": ["default"], "level": "INFO"},
    }  # fmt: skip


def proxy_options(serve) -> dict:
    """uvicorn's forwarded-header options for `ServeSettings`: the proxies in KEFU_TRUSTED_PROXIES, or none."""
    proxies = serve.proxies()
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or []}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    from app.errors import USER_ERRORS
    from app.settings import load_settings

    try:
        serve = load_settings().serve
    except USER_ERRORS as exc:
        sys.exit(f"Error: {exc}")
    host, port, workers = args.host or serve.serve_host, args.port or serve.serve_port, args.workers or serve.serve_workers
    made = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        made = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kefu-metrics-")
    import uvicorn

    try:
        uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, access_log=False,
                    log_config=log_config(), timeout_graceful_shutdown=10, **proxy_options(serve))  # fmt: skip
    finally:
        if made:
            shutil.rmtree(made, ignore_errors=True)


if __name__ == "__main__":
    main()
