"""The parsing sandbox: a file that is too slow, too hungry or crashes the parser fails alone, and the next
file is parsed by a fresh worker."""

import threading
import time

import pytest

from ingest.errors import LoadError
from ingest.limits import Limits
from ingest.loaders import LoadOptions
from ingest.sandbox import ParserSandbox


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.md"
    path.write_text("# Hours\n\nOpen 9 to 5.\n")
    return path


def test_documents_come_back_from_the_worker(good):
    with ParserSandbox(Limits()) as sandbox:
        [doc] = sandbox.load(good, LoadOptions())
        again = sandbox.load(good, LoadOptions(source="upload/hours.md"))
    assert doc.title == "Hours" and doc.blocks[0].text == "Open 9 to 5."
    assert again[0].source == "upload/hours.md" and again[0].doc_id != doc.doc_id


def test_a_loader_error_is_reported_and_the_worker_stays(tmp_path, good):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n")
    with ParserSandbox(Limits()) as sandbox:
        with pytest.raises(LoadError, match="line 1 is not valid JSON"):
            sandbox.load(bad, LoadOptions())
        pid = sandbox._process.pid
        sandbox.load(good, LoadOptions())
        assert sandbox._process.pid == pid


def test_a_slow_parse_is_stopped_and_the_next_file_gets_a_fresh_worker(tmp_path, good):
    big = tmp_path / "big.txt"
    big.write_text("lorem ipsum dolor sit amet\n" * 400_000)  # ~10 MB: parses in well over 10 ms
    with ParserSandbox(Limits(parse_timeout_s=0.01)) as sandbox:
        with pytest.raises(LoadError, match="took longer than 0 s to parse.*KEFU_PARSE_TIMEOUT"):
            sandbox.load(big, LoadOptions())
        assert sandbox._process is None  # the stuck worker was killed
    with ParserSandbox(Limits()) as sandbox:
        assert sandbox.load(good, LoadOptions())[0].title == "Hours"


def test_a_parse_that_needs_too_much_memory_fails_alone(tmp_path, good):
    huge = tmp_path / "huge.txt"
    huge.write_text(("数据 " * 1000 + "\n") * 30_000)  # ~180 MB once decoded, copied and serialised
    with ParserSandbox(Limits(parse_memory_mb=256)) as sandbox:
        with pytest.raises(LoadError, match="more than 256 MB|too large to parse"):
            sandbox.load(huge, LoadOptions(limits=Limits(max_file_mb=500)))
        assert sandbox.load(good, LoadOptions())[0].title == "Hours"


def test_a_parser_crash_is_reported(tmp_path, good):
    big = tmp_path / "big.txt"
    big.write_text("lorem ipsum dolor sit amet\n" * 2_000_000)
    with ParserSandbox(Limits()) as sandbox:
        sandbox.load(good, LoadOptions())  # the worker is up
        victim = sandbox._process

        def kill_soon():
            time.sleep(0.05)
            victim.kill()

        threading.Thread(target=kill_soon).start()
        with pytest.raises(LoadError, match="crashed the parser"):
            sandbox.load(big, LoadOptions())
        assert sandbox.load(good, LoadOptions())[0].title == "Hours"
