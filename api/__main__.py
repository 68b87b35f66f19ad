"""`python -m api --host H --port P --workers N`: serve Kefu's HTTP API under uvicorn (what `kefu serve` runs).

With several workers each is its own process with its own models; their metrics are added up through a fresh
folder in PROMETHEUS_MULTIPROC_DIR, set here before `app.metrics` is first imported (an operator's own folder
is kept). Logs: one JSON line per request on `kefu.api`; uvicorn's own access log is off (it would repeat them
with the query string, which may hold what a customer searched for).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    requests = logging.getLogger("kefu.api")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    requests.addHandler(handler)
    requests.propagate = False


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
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kefu-metrics-")
    configure_logging()
    import uvicorn

    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, access_log=False,
                log_config=None, timeout_graceful_shutdown=10)  # fmt: skip


if __name__ == "__main__":
    main()
