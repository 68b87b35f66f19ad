"""Batch FAQ answering (`kefu batch`): CSV and XLSX in and out, bad rows, resuming after an interruption, and a
1,000-question run killed with SIGKILL midway and finished by the same command."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.answering.batch import journal_path, read_table, run_batch
from app.errors import InputError
from conftest import ROOT, kefu, kefu_json

QUESTIONS = ["Do you ship internationally?", "How long do I have to return an item?", "退货期限是多久？",
             "What is the airspeed velocity of an unladen swallow?"]  # fmt: skip


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_csv_comes_back_with_every_column_answers_and_errors_in_order(use_kb, tmp_path):
    rows = [[str(i), q, "web"] for i, q in enumerate(QUESTIONS)] + [["4", "  ", "web"], ["5", "x" * 5000, "app"]]
    source = write_csv(tmp_path / "in.csv", ["id", "Question", "channel"], rows)
    summary = kefu_json("batch", str(source), "-o", str(tmp_path / "out.csv"))
    assert summary["rows"] == 6 and summary["answered"] == 6 and summary["errors"] == 2
    out = read_csv(tmp_path / "out.csv")
    assert list(out[0]) == ["id", "Question", "channel", "answer", "mode", "confidence", "sources", "error"]
    assert [r["id"] for r in out] == ["0", "1", "2", "3", "4", "5"]
    assert [r["mode"] for r in out] == ["faq", "extractive", "extractive", "abstain", "", ""]
    assert out[0]["sources"].startswith("FAQ › Do you ship internationally? [faq-")
    assert float(out[0]["confidence"]) >= 0.9 and "30" in out[1]["answer"]
    assert out[4]["error"] == "empty question" and out[5]["error"].startswith("question too long")
    assert not journal_path(tmp_path / "out.csv").exists()


def test_an_xlsx_comes_back_as_xlsx_and_nothing_becomes_a_formula(use_kb, tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["问题", "备注"])
    sheet.append(["退货期限是多久？", "note"])
    sheet.cell(2, 2).value, sheet.cell(2, 2).data_type = "=1+1", "s"  # text that looks like a formula
    sheet.append(["Do you ship internationally?", 42])
    workbook.save(tmp_path / "in.xlsx")
    kefu("batch", str(tmp_path / "in.xlsx"), "-o", str(tmp_path / "out.xlsx"))
    result = openpyxl.load_workbook(tmp_path / "out.xlsx").active
    rows = [[c.value for c in row] for row in result.iter_rows()]
    assert rows[0] == ["问题", "备注", "answer", "mode", "confidence", "sources", "error"]
    assert rows[1][1] == "=1+1" and result.cell(2, 2).data_type == "s"  # kept as text, not evaluated
    assert rows[2][1] == "42" and rows[2][3] == "faq" and "退货与退款政策" in rows[1][5]


def test_bad_input_gets_a_clear_error(use_kb, tmp_path):
    source = write_csv(tmp_path / "in.csv", ["id", "text"], [["1", "hello"]])
    assert "no question column" in kefu("batch", str(source), "-o", str(tmp_path / "o.csv"), expect=1)
    assert "--column" in kefu("batch", str(source), "-o", str(tmp_path / "o.csv"), expect=1)
    assert kefu_json("batch", str(source), "-o", str(tmp_path / "o.csv"), "--column", "TEXT")["rows"] == 1
    assert "overwrite the input" in kefu("batch", str(source), "-o", str(source), expect=1)
    assert ".csv or .xlsx" in kefu("batch", str(source), "-o", str(tmp_path / "o.txt"), expect=1)
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    assert "is empty" in kefu("batch", str(tmp_path / "empty.csv"), "-o", str(tmp_path / "o.csv"), expect=1)
    assert "does not exist" in kefu("batch", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "o.csv"), expect=1)


def test_an_interrupted_batch_resumes_and_answers_each_row_once(use_kb, tmp_path):
    from app.services import KefuService

    service = KefuService()
    rows = [[str(i), QUESTIONS[i % 4]] for i in range(100)]
    source = write_csv(tmp_path / "in.csv", ["id", "question"], rows)
    output = tmp_path / "out.csv"
    calls: list[int] = []

    def failing(questions):
        calls.append(len(questions))
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return service.ask_batch(questions)

    with pytest.raises(RuntimeError):
        run_batch(failing, source, output, group_rows=16)
    assert not output.exists()
    with journal_path(output).open("ab") as fh:
        fh.write(b'{"row": 40, "answer": "half a li')  # a torn last line, as SIGKILL mid-write leaves
    answered: list[int] = []

    def counting(questions):
        answered.append(len(questions))
        return service.ask_batch(questions)

    report = run_batch(counting, source, output, group_rows=16)
    assert report.resumed == 32 and report.answered == 68 and sum(answered) == 68
    out = read_csv(output)
    assert [r["id"] for r in out] == [str(i) for i in range(100)]
    assert all(r["mode"] for r in out)
    # A journal made for another input is refused rather than mixed in.
    journal_path(output).write_text('{"kefu_batch": 1, "input_sha256": "0", "column": "question", "rows": 1}\n')
    with pytest.raises(InputError, match="another input file"):
        run_batch(counting, source, output)
    assert run_batch(counting, source, output, restart=True).rows == 100


def test_a_thousand_questions_killed_midway_then_rerun_give_every_row_once(use_kb, tmp_path):
    rows = [[f"q{i:04d}", QUESTIONS[i % 4] + ("" if i % 3 else f" (ref {i})"), f"agent{i % 7}"] for i in range(1000)]
    source = write_csv(tmp_path / "questions.csv", ["ticket", "question", "owner"], rows)
    output = tmp_path / "answers.csv"
    command = [sys.executable, "-c", "from app.cli import main; main()", "batch", str(source), "-o", str(output), "--progress"]
    journal = journal_path(output)
    first = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_bytes().count(b"\n") > 300:
            break
        assert first.poll() is None, first.communicate()[1].decode()[-2000:]
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = journal.read_bytes().count(b"\n") - 1
    assert 300 <= done_before < 1000 and not output.exists()

    second = subprocess.run(command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "[########################] 1000/1000 questions" in second.stderr  # the progress bar
    assert f"{done_before} were answered by the interrupted run" in second.stdout
    out = read_csv(output)
    assert [r["ticket"] for r in out] == [f"q{i:04d}" for i in range(1000)]
    assert [r["owner"] for r in out] == [f"agent{i % 7}" for i in range(1000)]
    assert all(r["mode"] in ("faq", "extractive", "abstain") and not r["error"] for r in out)
    assert not journal.exists()
    assert json.loads(json.dumps(out[0]))["question"] == QUESTIONS[0] + " (ref 0)"


def test_read_table_keeps_ragged_rows(tmp_path):
    source = tmp_path / "ragged.csv"
    source.write_text("question,a,b\nhello\nworld,1,2,3\n", encoding="utf-8")
    table = read_table(source)
    assert table.columns == ["question", "a", "b", "column4"]  # a cell beyond the header keeps a column
    assert table.rows == [["hello", "", "", ""], ["world", "1", "2", "3"]] and table.question == 0


def test_an_uploaded_sheet_is_previewed_answered_and_returned_as_bytes(use_kb, tmp_path):
    """What the web app's Batch FAQ page does: the same engine over an upload's bytes, XLSX out."""
    import io

    import openpyxl

    from app.services import KefuService

    service = KefuService()
    try:
        data = "ticket,text\nT-1,Do you ship internationally?\nT-2,=HYPERLINK(\"x\")\n".encode()
        preview = service.batch_preview("tickets.csv", data)  # no question-like column: the first is proposed
        assert preview.columns == ["ticket", "text"] and preview.question == 0 and len(preview.rows) == 2
        result = service.answer_upload("tickets.csv", data, column="text", output_format=".xlsx")
        assert result.filename == "tickets-answers.xlsx" and result.report.rows == 2
        sheet = openpyxl.load_workbook(io.BytesIO(result.data)).active
        rows = [[c.value for c in row] for row in sheet.iter_rows()]
        assert rows[0] == ["ticket", "text", "answer", "mode", "confidence", "sources", "error"]
        assert rows[1][0] == "T-1" and "Canada" in rows[1][2] and rows[2][1] == '=HYPERLINK("x")'
        assert sheet.cell(3, 2).data_type == "s"  # kept as text, never a formula
        work = service.settings.core.home / "batch"
        assert work.is_dir() and not any(work.iterdir()), "the working folder is removed"
        with pytest.raises(InputError, match="batch files are .csv or .xlsx"):
            service.batch_preview("tickets.pdf", data)
    finally:
        service.close()
