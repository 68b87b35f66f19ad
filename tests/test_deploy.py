"""The deployment recipe stays true to the code: every KEFU_* variable the Dockerfile and docker-compose.yml set
is a real setting with a value Kefu accepts, and every `kefu` command they run exists."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from app.settings import _rows

ROOT = Path(__file__).resolve().parent.parent
KEFU_VAR = re.compile(r"\bKEFU_[A-Z0-9_]+\b")


def settings_names() -> set[str]:
    return {var for _, var, _, _ in _rows()}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def dockerfile_commands() -> list[list[str]]:
    """The Dockerfile's CMD (exec form), the kefu calls of its RUN lines, and those its comments tell people to run
    (in backticks)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    commands = [json.loads(m) for m in re.findall(r"^CMD (\[.*\])$", text, re.M)]
    for line in text.splitlines():
        if line.startswith("RUN"):
            commands += [shlex.split(part) for part in re.findall(r"\b(kefu [^&|;\\]+)", line)]
        elif line.startswith("#"):
            commands += [shlex.split(part) for part in re.findall(r"`(kefu [^`]+)`", line)]
    return commands


def compose_commands() -> list[list[str]]:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    services = compose()["services"]
    commands = [s["command"] for s in services.values() if isinstance(s.get("command"), list) and s["command"][0] == "kefu"]
    commands += [shlex.split(line) for line in re.findall(r"run --rm api (kefu [^#\n]+)", text)]  # the comments' recipe
    return commands


def test_every_kefu_variable_is_a_real_setting_with_a_valid_value(monkeypatch):
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8") + (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(KEFU_VAR.findall(text))
    assert used and not (used - settings_names()), f"not settings: {sorted(used - settings_names())}"
    environment = compose()["x-kefu"]["environment"]
    assert set(environment) <= settings_names()
    from app.settings import load_settings

    for name, value in environment.items():
        if "${" not in str(value):
            monkeypatch.setenv(name, str(value))
    settings = load_settings()  # raises on a value Kefu cannot use
    assert settings.generation.llm == "openai" and settings.store.store == "elasticsearch"


@pytest.mark.parametrize("source", ["Dockerfile", "docker-compose.yml"])
def test_every_kefu_command_exists(source):
    from app.cli import main

    commands = dockerfile_commands() if source == "Dockerfile" else compose_commands()
    assert commands and all(c[0] == "kefu" for c in commands)
    for argv in commands:
        ctx = main.make_context("kefu", argv[1:], resilient_parsing=True)
        group, words = main, argv[1:]
        while words and isinstance(group, click.Group):
            command = group.get_command(ctx, words[0])
            assert command is not None, f"{source}: `{' '.join(argv)}`: no command {words[0]!r}"
            group, words = command, words[1:]
        options = {o for p in group.params for o in getattr(p, "opts", [])}
        for word in words:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"{source}: `{' '.join(argv)}`: no option {word}"
