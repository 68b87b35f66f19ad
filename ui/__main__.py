"""`python -m ui --host H --port P`: start Kefu's Streamlit app (what `kefu ui` runs). Only Streamlit's own
runner is started here; the app (`ui/streamlit_app.py`) builds the service in its server process."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "streamlit_app.py"


def streamlit_args(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ui", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)
    os.execv(sys.executable, streamlit_args(args.host, args.port))


if __name__ == "__main__":
    main()
