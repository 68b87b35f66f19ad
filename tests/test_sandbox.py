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
        pid = sandbox._parser._process.pid
        sandbox.load(good, LoadOptions())
        assert sandbox._parser._process.pid == pid


def test_a_slow_parse_is_stopped_and_the_next_file_gets_a_fresh_worker(tmp_path, good):
    big = tmp_path / "big.txt"
    big.write_text("lorem ipsum dolor sit amet\n" * 400_000)  # ~10 MB: parses in well over 10 ms
    with ParserSandbox(Limits(parse_timeout_s=0.01)) as sandbox:
        with pytest.raises(LoadError, match="took longer than 0 s to parse.*KEFU_PARSE_TIMEOUT"):
            sandbox.load(big, LoadOptions())
        assert sandbox._parser._process is None  # the stuck worker was killed
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
        victim = sandbox._parser._process

        def kill_soon():
            time.sleep(0.05)
            victim.kill()

        threading.Thread(target=kill_soon).start()
        with pytest.raises(LoadError, match="crashed the parser"):
            sandbox.load(big, LoadOptions())
        assert sandbox.load(good, LoadOptions())[0].title == "Hours"


# -- OCR: images and scanned pages go on to a second worker with limits of its own ----------------------------


@pytest.fixture
def picture(tmp_path):
    from tests.scans import scan

    path = tmp_path / "notice.png"
    scan(["Closed on Sunday"]).save(path)
    return path


def test_a_scan_goes_on_to_the_ocr_worker_which_keeps_its_models(picture, good):
    with ParserSandbox(Limits()) as sandbox:
        [doc] = sandbox.load(picture, LoadOptions())
        ocr_pid = sandbox._ocr._process.pid
        again = sandbox.load(picture, LoadOptions(source="upload/notice.png"))
        assert sandbox._ocr._process.pid == ocr_pid and sandbox._parser._process.pid != ocr_pid
        assert sandbox.load(good, LoadOptions())[0].title == "Hours"
    assert doc.text == "Closed on Sunday" and doc.metadata["ocr_pages"] == [1]
    assert again[0].source == "upload/notice.png"


def test_ocr_has_its_own_time_limit(picture, good):
    with ParserSandbox(Limits(ocr_timeout_s=0.2)) as sandbox:
        sandbox.load(good, LoadOptions())
        parser_pid = sandbox._parser._process.pid
        with pytest.raises(LoadError, match=r"notice.png took longer than 0 s to read by OCR and was stopped \(KEFU_OCR_TIMEOUT\)"):
            sandbox.load(picture, LoadOptions())
        assert sandbox._ocr._process is None  # the OCR worker was killed; the parser was not
        assert sandbox.load(good, LoadOptions())[0].title == "Hours" and sandbox._parser._process.pid == parser_pid


def test_ocr_has_its_own_memory_cap(picture, good):
    with ParserSandbox(Limits(ocr_memory_mb=300)) as sandbox:  # too little to load the models: how it fails varies
        with pytest.raises(LoadError, match=r"(needs more than 300 MB of memory to read by OCR|crashed the OCR worker)"
                                            r".*KEFU_OCR_MEMORY_MB"):  # fmt: skip
            sandbox.load(picture, LoadOptions())
        assert sandbox.load(good, LoadOptions())[0].title == "Hours"
