"""The hostile batch: valid files indexed and searchable, every hostile one reported with a reason, peak
memory of the whole ingest (the kefu process and its parser worker) under 1.5 GB."""

import json
import os
import random
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from tests.conftest import kefu_json

GB = 1024**3


def build_batch(folder: Path) -> None:
    folder.mkdir()
    (folder / "store-hours.md").write_text("# Store hours\n\nOur Shanghai store opens from 10:00 to 21:00.\n")
    # A GBK-encoded FAQ sheet, as Excel on Chinese Windows saves it, with a ragged row.
    (folder / "常见问题.csv").write_bytes(
        "问题,答案\n可以开发票吗？,可以，发货后在订单页下载。\n只有问题没有答案\n门店几点关门？,晚上九点。,多余的一列\n".encode("gbk")
    )
    (folder / "promo.html").write_text(
        "<html><head><title>Spring sale</title><script>document.cookie='x'; fetch('//evil')</script></head>"
        "<body><nav>Home | Shop</nav><h1>Spring sale</h1><p>All earbuds are 20% off until April 30.</p>"
        "<footer>Imprint</footer></body></html>"
    )
    # A DOCX ZIP bomb: about 300 MB of XML in a few hundred KB.
    with zipfile.ZipFile(folder / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w") as f:
            chunk = b"<w:p><w:r><w:t>" + b"A" * (1 << 20) + b"</w:t></w:r></w:p>"
            for _ in range(300):
                f.write(chunk)
    # A truncated PDF: the first half of a real one.
    from reportlab.pdfgen import canvas

    pdf = folder / "full.pdf.tmp"
    c = canvas.Canvas(str(pdf))
    for i in range(5):
        c.drawString(72, 800, f"Page {i} of a manual that will be cut in half.")
        c.showPage()
    c.save()
    data = pdf.read_bytes()
    (folder / "truncated.pdf").write_bytes(data[: len(data) // 2])
    pdf.unlink()
    rng = random.Random(7)
    (folder / "random.pdf").write_bytes(bytes(rng.getrandbits(8) for _ in range(50_000)))
    (folder / "random.txt").write_bytes(bytes(rng.getrandbits(8) for _ in range(50_000)))
    (folder / "empty.md").write_bytes(b"")


def run_measured(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, int, float]:
    """Run a command; sample the summed RSS of it and its children every 20 ms; return (result, peak, seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = 0
    watched = psutil.Process(process.pid)

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            try:
                tree = [watched, *watched.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = process.communicate(timeout=600)
    sampler.join()
    return subprocess.CompletedProcess(args, process.returncode, out, err), peak, time.perf_counter() - started


def test_hostile_batch(tmp_path, isolated_settings):
    folder = tmp_path / "batch"
    build_batch(folder)
    kefu = str(Path(sys.executable).parent / "kefu")
    result, peak, seconds = run_measured([kefu, "ingest", str(folder), "--json"], env=os.environ.copy())
    assert result.returncode == 1, result.stderr.decode()  # some files failed
    report = json.loads(result.stdout)
    status = {Path(f["path"]).name: (f["status"], f["error"] or "") for f in report["files"]}

    assert status["store-hours.md"][0] == "indexed"
    assert status["常见问题.csv"][0] == "indexed"
    assert status["promo.html"][0] == "indexed"
    assert status["bomb.docx"][0] == "failed" and "ZIP bomb" in status["bomb.docx"][1]
    assert status["truncated.pdf"][0] == "failed" and "damaged or truncated PDF" in status["truncated.pdf"][1]
    assert status["random.pdf"][0] == "failed" and "not a PDF" in status["random.pdf"][1]
    assert status["random.txt"][0] == "failed" and status["random.txt"][1]
    assert status["empty.md"][0] == "failed" and "no text" in status["empty.md"][1]
    assert report["summary"]["indexed"] == 3 and report["summary"]["failed"] == 5

    assert peak < 1.5 * GB, f"peak memory {peak / GB:.2f} GB"
    print(f"\nhostile batch: {seconds:.1f} s, peak memory {peak / 2**20:.0f} MB")

    hours = kefu_json("search", "when does the Shanghai store close", "-k", "1")["results"][0]
    assert hours["title"] == "Store hours"
    faq = kefu_json("search", "门店几点关门", "-k", "1")["results"][0]
    assert "晚上九点" in faq["text"]
    sale = kefu_json("search", "earbuds discount", "-k", "1")["results"][0]
    assert sale["title"] == "Spring sale" and "fetch" not in sale["text"] and "Home" not in sale["text"]
    assert len(kefu_json("docs", "list")["documents"]) == 3


def test_upload_names_are_labels_never_paths(isolated_settings):
    from app.services import KefuService

    service = KefuService()
    report = service.ingest_uploads(
        [
            ("../../../etc/cron.d/evil.md", b"# Evil\n\nNot a path.\n"),
            ("C:\\Users\\me\\Desktop\\hours.md", b"# Hours\n\nOpen 9 to 5.\n"),
            ("clip.mp4", b"\x00\x00\x00\x18ftypmp42"),
        ]
    )
    by_label = {f.path: f for f in report.files}
    assert by_label["upload/evil.md"].status == "indexed"
    assert by_label["upload/hours.md"].status == "indexed"
    assert by_label["upload/clip.mp4"].status == "skipped"
    stored = sorted(p.name for p in (isolated_settings / "uploads").iterdir())
    assert len(stored) == 2 and all(len(name.split(".")[0]) == 20 for name in stored)
    assert not (isolated_settings.parent / "etc").exists()
    docs = {d.source: d for d in service.documents()}
    assert set(docs) == {"upload/evil.md", "upload/hours.md"}

    again = service.ingest_uploads([("hours.md", b"# Hours\n\nOpen 10 to 6.\n")])
    assert again.files[0].status == "indexed"
    assert {d.source for d in service.documents()} == {"upload/evil.md", "upload/hours.md"}  # replaced, not added
    assert "10 to 6" in service.search("opening hours", k=1)[0].chunk.text
    service.close()
