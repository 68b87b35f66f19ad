"""Scans through the real pipeline: `kefu ingest` on a folder holding a scanned notice (PNG), a manual whose
middle page is a scan, a Markdown file, and hostile images (a 30000 x 30000 PNG decompression bomb, a JPEG
claiming 60000 x 60000 pixels, a truncated PNG). The good files are indexed and answered from, with the scan
cited and the scanned page's number kept; each hostile one fails alone with its reason."""

from __future__ import annotations

from tests.conftest import kefu_json
from tests.scans import jpeg_claiming, mixed_pdf, png_bomb, scan, truncated_png


def test_scans_are_indexed_and_answered_from_and_hostile_images_fail_alone(tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "store-hours.md").write_text("# Store hours\n\nOur Shanghai store opens from 10:00 to 21:00.\n")
    scan(["Pickup lockers", "Parcels wait in the Nanjing Road locker for 72 hours,",
          "then they go back to the depot in Minhang."]).save(folder / "locker-notice.png")  # fmt: skip
    mixed_pdf(
        folder / "speaker-manual.pdf",
        text_pages={1: "Speaker manual\nCharge the speaker for two hours before first use.",
                    3: "Warranty\nThe speaker carries a two-year warranty."},  # fmt: skip
        scanned_pages={2: scan(["Resetting", "Hold the power key for 8 seconds to reset the speaker."])},
    )
    png_bomb(folder / "bomb.png")
    jpeg_claiming(folder / "huge.jpg")
    truncated_png(folder / "cut.png")

    report = kefu_json("ingest", str(folder), expect=1)
    status = {f["path"].rsplit("/", 1)[-1]: (f["status"], f["error"] or "") for f in report["files"]}
    assert status["store-hours.md"][0] == "indexed"
    assert status["locker-notice.png"][0] == "indexed"
    assert status["speaker-manual.pdf"][0] == "indexed"
    assert status["bomb.png"][0] == "failed" and "30000 x 30000 pixels" in status["bomb.png"][1]
    assert "decompression bomb (KEFU_OCR_MAX_MEGAPIXELS)" in status["bomb.png"][1]
    assert status["huge.jpg"][0] == "failed" and "60000 x 60000 pixels" in status["huge.jpg"][1]
    assert status["cut.png"][0] == "failed" and "damaged or truncated image" in status["cut.png"][1]
    assert report["summary"]["indexed"] == 3 and report["summary"]["failed"] == 3

    answer = kefu_json("ask", "How long do parcels wait in the locker?")
    assert "72 hours" in answer["answer"]
    assert answer["sources"][0]["source"].endswith("locker-notice.png")

    reset = kefu_json("search", "how do I reset the speaker", "-k", "1")["results"][0]
    assert reset["source"].endswith("speaker-manual.pdf") and reset["page"] == 2
    assert "Hold the power key for 8 seconds" in reset["text"]
    charge = kefu_json("search", "how long to charge the speaker before first use", "-k", "1")["results"][0]
    assert charge["page"] == 1 and "two hours" in charge["text"]  # a text page, from its text layer
