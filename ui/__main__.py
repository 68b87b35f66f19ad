"""`python -m ui --host H --port P`: serve Kefu's Streamlit app (what `kefu ui` runs), safe by default.

Streamlit runs in this process, configured here rather than by a config file a deployment could forget:
usage statistics off, error details off (a visitor sees a message, never a traceback), uploads capped at
KEFU_MAX_FILE_MB, no file watcher, a minimal toolbar. It serves `ui/web_server.py` (Streamlit's server with
Kefu's cookies: the visitor cookie and the staff sign-in's HttpOnly cookie). Its uvicorn believes
X-Forwarded-For only from KEFU_TRUSTED_PROXIES (uvicorn alone would believe it from 127.0.0.1: anything on the
host could pose as any address). Before the server starts, the shared `KefuService` is built and its warm-up
begins (`app.warmup`), so the models are loaded before the first visitor asks.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().parent / "web_server.py"


def server_options(host: str, port: int, max_upload_mb: int) -> list[str]:
    """Streamlit's command-line options for `streamlit run`."""
    return [
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.maxUploadSize", str(max_upload_mb),
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",
        "--client.toolbarMode", "minimal",
        "--global.developmentMode", "false",
    ]  # fmt: skip


def _report_warm_up(warm) -> None:
    print("Kefu is warming up: loading the knowledge base and models…", file=sys.stderr, flush=True)
    warm.wait()
    if warm.error:
        print(f"Kefu warm-up failed after {warm.seconds:.1f} s: {warm.error}", file=sys.stderr, flush=True)
    else:
        print(f"Kefu is warm ({warm.seconds:.1f} s): every answer starts at once.", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ui", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)

    from app.settings import load_settings

    settings = load_settings()
    from streamlit.web import cli

    from ui.resources import get_service

    # uvicorn reads this as it starts Streamlit's server: "" trusts no proxy.
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(settings.serve.proxies())
    service = get_service()  # built now: its warm-up runs while the server starts
    if service.warm_up_state is not None:
        threading.Thread(target=_report_warm_up, args=(service.warm_up_state,), daemon=True).start()
    sys.argv = ["streamlit", "run", str(APP), *server_options(args.host, args.port, settings.ingest.max_file_mb)]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
