"""Batch FAQ answering: a CSV or XLSX of questions in; the same rows, in the same order, with `answer`,
`mode`, `confidence`, `sources` and `error` added, out (CSV or XLSX by the output's extension).

- The question column is found by name (`question`, `问题`, … as FAQ sheets use, or the one given); every
  other column is kept. A row whose question is empty or too long gets an `error`, never a crash.
- **Resumable.** Answers go to a journal beside the output (`OUT.kefu-batch.jsonl`: a header naming the input's
  SHA-256 and the column, then one JSON line per answered row), appended and synced after each group of rows.
  Killed at any moment, the same command reads the journal (a torn last line is cut off), answers only the rows
  it lacks, and writes the finished file at the end, through a temporary file and an atomic rename: the output
  holds every input row exactly once, in input order. A journal from another input or column is refused.
- Answers come from the stateless answerer's batch (`answer_batch`: one embedding batch per group for the
  searches, one batched generation when a model writes the answers).
- Text Kefu writes into a sheet is never a formula: cells are written as text (XLSX), and a generated cell that
  starts like one (`=`, `+`, `-`, `@`) gets a leading apostrophe (CSV).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.answering.answerer import MAX_QUESTION_CHARS
from app.answering.rules import Answer
from app.errors import InputError
from ingest.errors import LoadError
from ingest.limits import Limits, check_zip
from ingest.loaders import QUESTION_COLUMNS, decode_bytes

FORMATS = (".csv", ".xlsx")
ADDED = ("answer", "mode", "confidence", "sources", "error")
GROUP_ROWS = 32
MAX_ROWS = 200_000
JOURNAL_SUFFIX = ".kefu-batch.jsonl"
JOURNAL_VERSION = 1
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    question: int  # index of the question column


@dataclass
class BatchProgress:
    done: int
    total: int
    resumed: int  # rows already answered by an earlier, interrupted run


@dataclass
class BatchReport:
    input: str
    output: str
    rows: int
    answered: int  # rows answered by this run
    resumed: int
    errors: int
    modes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        rate = self.answered / self.seconds if self.seconds > 0 else 0.0
        return {**vars(self), "seconds": round(self.seconds, 2), "questions_per_second": round(rate, 2)}


# -- reading and writing tables ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path.name}: batch files are {' or '.join(FORMATS)}, not {suffix or 'without an extension'!r}")
    return suffix


def read_table(path: Path, column: str | None = None, limits: Limits | None = None) -> Table:
    """The sheet's header and rows (all cells as text) and the question column; InputError with the fix."""
    limits = limits or Limits()
    suffix = _format(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    if path.stat().st_size > limits.max_file_mb * 1024 * 1024:
        raise InputError(f"{path.name} is larger than {limits.max_file_mb} MB (KEFU_MAX_FILE_MB)")
    try:
        header, rows = _read_xlsx(path, limits) if suffix == ".xlsx" else _read_csv(path)
    except LoadError as exc:
        raise InputError(str(exc)) from None
    if not header:
        raise InputError(f"{path.name} is empty: it needs a header row naming its columns")
    if len(rows) > MAX_ROWS:
        raise InputError(f"{path.name} has {len(rows)} rows; a batch takes at most {MAX_ROWS}: split the file")
    folded = [h.strip().lower() for h in header]
    wanted = (column.strip().lower(),) if column else QUESTION_COLUMNS
    index = next((folded.index(name) for name in wanted if name in folded), None)
    if index is None:
        looked = repr(column) if column else "/".join(QUESTION_COLUMNS)
        raise InputError(
            f"{path.name} has no question column (looked for {looked}; found {', '.join(map(repr, header))}): "
            "name it with --column"
        )
    width = max([len(header)] + [len(r) for r in rows])
    header = header + [f"column{n}" for n in range(len(header) + 1, width + 1)]  # cells past the header are kept
    return Table(header, [r + [""] * (width - len(r)) for r in rows], index)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    text = decode_bytes(path.read_bytes(), path.name)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    return (rows[0], rows[1:]) if rows else ([], [])


def _read_xlsx(path: Path, limits: Limits) -> tuple[list[str], list[list[str]]]:
    check_zip(path, limits, "XLSX")
    import openpyxl  # half a second to import: only for XLSX sheets

    try:
        workbook = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise LoadError(f"{path.name} is not a readable Excel workbook ({type(exc).__name__}: {exc})") from None
    try:
        sheet = workbook.worksheets[0]
        rows = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    rows = [r for r in rows if any(c.strip() for c in r)]
    return (rows[0], rows[1:]) if rows else ([], [])


def _safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_table(path: Path, columns: Sequence[str], rows: Sequence[Sequence[str]], generated: int) -> None:
    """Write a sheet atomically (a temporary file renamed over `path`). The last `generated` columns are
    Kefu's, made formula-safe in CSV; XLSX cells are all text."""
    temporary = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    if _format(path) == ".xlsx":
        import openpyxl  # only for XLSX sheets
        from openpyxl.cell import WriteOnlyCell

        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("answers")

        def text_cell(value: str):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # text, even when it starts with "="
            return cell

        sheet.append([text_cell(c) for c in columns])
        for row in rows:
            sheet.append([text_cell(c) for c in row])
        workbook.save(str(temporary))
    else:
        with temporary.open("w", encoding="utf-8-sig", newline="") as out:  # the BOM: Excel reads it as UTF-8
            writer = csv.writer(out)
            writer.writerow(columns)
            first = len(columns) - generated
            for row in rows:
                writer.writerow([c if i < first else _safe(c) for i, c in enumerate(row)])
    os.replace(temporary, path)


# -- the journal --------------------------------------------------------------------------------------------


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + JOURNAL_SUFFIX)


def _header(input_path: Path, column: str, rows: int) -> dict[str, Any]:
    digest = hashlib.sha256(input_path.read_bytes()).hexdigest()
    return {"kefu_batch": JOURNAL_VERSION, "input_sha256": digest, "column": column, "rows": rows}


def read_journal(path: Path, header: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Rows already answered, by row index; cuts a torn last line (a run killed mid-write) off the file."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with path.open("r+b") as fh:
            fh.truncate(end)
    lines = data[:end].decode("utf-8", errors="replace").splitlines()
    try:
        found = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        found = None
    if found != header:
        raise InputError(
            f"{path} holds answers for another input file or question column: delete it (or pass --restart) "
            "to start this batch over"
        )
    done: dict[int, dict[str, Any]] = {}
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("row"), int):
            done[record["row"]] = record
    return done


def _append(path: Path, records: Sequence[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# -- answering ----------------------------------------------------------------------------------------------


def sources_cell(answer: Answer) -> str:
    """The sources as a reader can follow them: "title [id]" joined by " | "."""
    parts = []
    for source in answer.sources:
        title = source.get("title") or source.get("doc_id", "")
        section = source.get("section") or ""
        if section and section != title:
            title = f"{title} › {section}"
        parts.append(f"{title} [{source.get('chunk_id') or source.get('doc_id', '')}]")
    return " | ".join(parts)


def row_problem(question: str, limit: int = MAX_QUESTION_CHARS) -> str | None:
    if not question.strip():
        return "empty question"
    if len(question.strip()) > limit:
        return f"question too long ({len(question.strip())} characters; the limit is {limit})"
    return None


def run_batch(
    answer_batch: Callable[[list[str]], list[Answer]],
    input_path: Path,
    output_path: Path,
    column: str | None = None,
    restart: bool = False,
    limits: Limits | None = None,
    group_rows: int = GROUP_ROWS,
    on_progress: Callable[[BatchProgress], None] | None = None,
    max_chars: int = MAX_QUESTION_CHARS,
) -> BatchReport:
    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    _format(output_path)
    if output_path.resolve() == input_path.resolve():
        raise InputError("the output would overwrite the input: choose another -o path")
    table = read_table(input_path, column, limits)
    journal = journal_path(output_path)
    header = _header(input_path, table.columns[table.question], len(table.rows))
    if restart:
        journal.unlink(missing_ok=True)
    done = read_journal(journal, header)
    if not journal.exists():
        _append(journal, [header])
    resumed = len(done)
    todo = [i for i in range(len(table.rows)) if i not in done]
    if on_progress:
        on_progress(BatchProgress(len(done), len(table.rows), resumed))
    for start in range(0, len(todo), group_rows):
        group = todo[start : start + group_rows]
        records = _answer_group(answer_batch, [table.rows[i][table.question] for i in group], group, max_chars)
        _append(journal, records)
        done.update((r["row"], r) for r in records)
        if on_progress:
            on_progress(BatchProgress(len(done), len(table.rows), resumed))

    added = [name if name not in table.columns else f"kefu_{name}" for name in ADDED]
    rows = []
    modes: dict[str, int] = {}
    errors = 0
    for i, row in enumerate(table.rows):
        record = done[i]
        if record["mode"]:
            modes[record["mode"]] = modes.get(record["mode"], 0) + 1
        errors += bool(record["error"])
        confidence = "" if record["confidence"] is None else f"{record['confidence']:.3f}"
        rows.append(row + [record["answer"], record["mode"], confidence, record["sources"], record["error"]])
    write_table(output_path, table.columns + added, rows, generated=len(added))
    journal.unlink(missing_ok=True)
    return BatchReport(str(input_path), str(output_path), len(rows), len(todo), resumed, errors, modes,
                       time.perf_counter() - started)  # fmt: skip


def _answer_group(answer_batch: Callable[[list[str]], list[Answer]], questions: list[str], rows: list[int],
                  max_chars: int) -> list[dict[str, Any]]:  # fmt: skip
    problems = [row_problem(q, max_chars) for q in questions]
    valid = [i for i, p in enumerate(problems) if p is None]
    answers = answer_batch([questions[i].strip() for i in valid]) if valid else []
    by_position = dict(zip(valid, answers))
    records = []
    for position, row in enumerate(rows):
        answer = by_position.get(position)
        if answer is None:
            records.append({"row": row, "answer": "", "mode": "", "confidence": None, "sources": "", "error": problems[position]})
        else:
            records.append({
                "row": row, "answer": answer.answer, "mode": answer.mode, "confidence": answer.confidence,
                "sources": sources_cell(answer), "error": "",
            })  # fmt: skip
    return records


# -- uploaded sheets (the web app) -------------------------------------------------------------------------


@dataclass
class UploadedBatch:
    """A finished batch over an uploaded sheet: the report, the output file's bytes and its name."""

    report: BatchReport
    data: bytes
    filename: str
    columns: list[str]
    rows: list[list[str]]  # the output's rows (for a preview)


def _staged(name: str, data: bytes, work_dir: Path) -> Path:
    """The upload written under `work_dir`, named by its content (never by the upload's name): the same upload
    lands in the same folder, so an interrupted batch over it resumes from its journal."""
    suffix = Path(name or "").suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{Path(name).name or 'the file'}: batch files are {' or '.join(FORMATS)}, not {suffix or 'without an extension'!r}")
    folder = Path(work_dir) / hashlib.sha256(data).hexdigest()[:24]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"input{suffix}"
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return path


def preview_upload(name: str, data: bytes, work_dir: Path, limits: Limits | None = None) -> Table:
    """The uploaded sheet's columns and rows, and the question column found by name (its index; 0 when no
    column has a question-like name: the caller lets the user choose)."""

    path = _staged(name, data, work_dir)
    try:
        return read_table(path, None, limits)
    except InputError as exc:
        if "no question column" not in str(exc):
            raise
        table = read_table(path, _first_header(path, limits), limits)
        return Table(table.columns, table.rows, 0)
    finally:
        if not any(path.parent.glob("*" + JOURNAL_SUFFIX)):  # keep an interrupted batch's folder: it resumes
            shutil.rmtree(path.parent, ignore_errors=True)


def _first_header(path: Path, limits: Limits | None) -> str:
    header, _ = _read_xlsx(path, limits or Limits()) if path.suffix == ".xlsx" else _read_csv(path)
    if not header or not header[0].strip():
        raise InputError(f"{path.name}: the first row must name the columns")
    return header[0]


def answer_upload(
    answer_batch: Callable[[list[str]], list[Answer]],
    name: str,
    data: bytes,
    work_dir: Path,
    column: str | None = None,
    output_format: str = ".csv",
    limits: Limits | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> UploadedBatch:
    """`run_batch` over an uploaded sheet: the output (CSV or XLSX) comes back as bytes, and the working folder
    under `work_dir` is removed once it has."""

    output_format = output_format if output_format.startswith(".") else "." + output_format
    if output_format not in FORMATS:
        raise InputError(f"the output is {' or '.join(FORMATS)}, not {output_format!r}")
    source = _staged(name, data, work_dir)
    output = source.with_name("answers" + output_format)
    report = run_batch(answer_batch, source, output, column, limits=limits, on_progress=on_progress)
    stem = Path(name).stem or "questions"
    header, rows = _read_xlsx(output, limits or Limits()) if output_format == ".xlsx" else _read_csv(output)
    uploaded = UploadedBatch(report, output.read_bytes(), f"{stem}-answers{output_format}", header, rows)
    shutil.rmtree(source.parent, ignore_errors=True)
    return uploaded
