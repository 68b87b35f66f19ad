"""End-to-end conversation benchmark (issue 16): written customer conversations played through Kefu's public
service, turn by turn in one session, each turn judged against its label.

The conversations (`data/eval/conversations/*.jsonl`, one turn per line, in order) run over the sample knowledge
base (`data/kb`, a shop) and a second one (`data/kb-telecom`, a mobile operator), English and Chinese. Each turn
is labelled with the documents that answer it (paths inside its knowledge base) and the fact a right answer must
contain (variants: "30 days" / "30 天"), and the mode class it should get (`answered`: faq, extractive or
generated; `declined`: abstain or handoff), or `"docs": "not covered"`. Tags say what the turn tests (`TAGS`).

A turn is right when its mode class is the labelled one and, for an answered turn, a labelled document is among
the sources the answer cites and the fact is in the answer (case, spaces and Markdown emphasis ignored).
Figures, per knowledge base and overall:

- first-turn accuracy: covered first turns right;
- follow-up accuracy: covered later turns right;
- topic-switch contamination: of the turns tagged `topic-switch` (a new topic that must not inherit the earlier
  one), those whose searched query carries words of earlier turns the turn itself does not say, or whose answer
  cites an earlier turn's document instead of its own;
- out-of-scope declined: not-covered turns that abstained or were handed over.

Three systems in the same run, each over freshly ingested knowledge bases (a temporary KEFU_HOME per knowledge
base, every KEFU_* setting cleared: the default configuration without a language model, KEFU_LLM=extractive):

- `kefu`: this code, every conversation in one session (`KefuService.ask(question, session_id)`);
- `no history`: this code, every turn asked in a new session;
- `before #16`: the code of `--baseline-ref` (default d048c9f, main when issue 16 began), checked out with
  `git worktree add` into a temporary folder and played in a subprocess with that folder on PYTHONPATH.

`--held-back` plays `data/heldback/conversations.jsonl` (a hotel chain's knowledge base) instead: the final check
on a knowledge base nothing was tuned on; do not look at its failures while tuning.

    python bench/conversations.py [--verbose] [--baseline-ref REF | --baseline-ref none] [--json OUT]
    python bench/conversations.py --conversations data/eval/conversations/telecom.jsonl --baseline-ref none
    python bench/conversations.py --held-back

About 12 minutes on 2 shared CPU cores for the three systems (each player loads the models and ingests both
knowledge bases); `--baseline-ref none` halves it while iterating.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = sorted((ROOT / "data" / "eval" / "conversations").glob("*.jsonl"))
HELD_BACK = ROOT / "data" / "heldback" / "conversations.jsonl"
BASELINE_REF = "d048c9f"

NOT_COVERED = "not covered"
ANSWERED, DECLINED = "answered", "declined"
ANSWERED_MODES = {"faq", "extractive", "generated"}
DECLINED_MODES = {"abstain", "handoff"}
TAGS = {
    "cue-less": "a follow-up that names neither the topic nor the product (no 'and', 'what about', '呢')",
    "price": "asks a price or fee", "time": "asks a time, a duration or a deadline",
    "amount": "asks an amount or a quantity", "place": "asks where, or names a place",
    "pronoun": "refers back with a pronoun (it, that, they, she)", "ellipsis": "'and X?', 'what about X?', 'X呢？'",
    "identifier": "holds an order, account or booking number", "email": "holds an email address",
    "phone": "holds a phone number", "number": "holds a number or an amount of money that is not the question",
    "topic-switch": "a new topic: must not inherit the earlier one", "language-switch": "changes language",
    "not-covered": "the knowledge base does not answer it", "short": "a short question (Chinese: a few characters)",
    "product": "names a product or plan, or is about one named earlier",
}  # fmt: skip
SYSTEMS = ("kefu", "no history", "before #16")


# -- the conversations --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    ask: str
    docs: tuple[str, ...]  # empty: not covered
    fact: tuple[str, ...]
    mode: str  # answered | declined
    tags: tuple[str, ...]

    @property
    def covered(self) -> bool:
        return bool(self.docs)


@dataclass
class Conversation:
    id: str
    kb: str  # the knowledge base's folder, relative to the repository
    turns: list[Turn] = field(default_factory=list)

    @property
    def language(self) -> str:
        return "zh" if re.search(r"[\u4e00-\u9fff]", self.turns[0].ask) else "en"


class DataError(ValueError):
    pass


def read_conversations(paths: Sequence[Path]) -> list[Conversation]:
    """The conversations of JSONL files (one turn a line, a conversation's turns in order); DataError names the
    file and line of a malformed turn."""
    out: dict[str, Conversation] = {}
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                row = json.loads(line)
                docs = row["docs"]
                turn = Turn(row["ask"], () if docs == NOT_COVERED else tuple(docs), tuple(row.get("fact", ())),
                            row["mode"], tuple(row.get("tags", ())))  # fmt: skip
                conv_id, kb = row["conv"], row["kb"]
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{where}: not a labelled turn ({exc!r})") from None
            conversation = out.setdefault(conv_id, Conversation(conv_id, kb))
            if conversation.kb != kb:
                raise DataError(f"{where}: conversation {conv_id} changes knowledge base ({conversation.kb} → {kb})")
            conversation.turns.append(turn)
    return list(out.values())


def check_conversations(conversations: Sequence[Conversation], root: Path = ROOT) -> list[str]:
    """What is wrong with the labels: every turn has a question, a mode class, and either documents that exist in
    its knowledge base with a fact, or "not covered" with the declined class; tags are known ones."""
    problems = []
    for c in conversations:
        kb = root / c.kb
        if not kb.is_dir():
            problems.append(f"{c.id}: no knowledge base {c.kb}")
            continue
        for i, t in enumerate(c.turns):
            where = f"{c.id} turn {i + 1}"
            if not t.ask.strip():
                problems.append(f"{where}: empty question")
            if t.mode not in (ANSWERED, DECLINED):
                problems.append(f"{where}: mode {t.mode!r} is not {ANSWERED!r} or {DECLINED!r}")
            if t.covered != (t.mode == ANSWERED):
                problems.append(f"{where}: {'documents' if t.covered else 'not covered'} with mode {t.mode!r}")
            if t.covered and not [f for f in t.fact if f.strip()]:
                problems.append(f"{where}: no fact")
            problems += [f"{where}: no document {d} in {c.kb}" for d in t.docs if not (kb / d).is_file()]
            problems += [f"{where}: unknown tag {tag!r}" for tag in t.tags if tag not in TAGS]
            if (not t.covered) != ("not-covered" in t.tags):
                problems.append(f"{where}: 'not-covered' tag and label disagree")
    return problems


def normalise(text: str) -> str:
    """Text compared for a fact: lower case, without spaces and Markdown emphasis ("**30 days**" ⊇ "30days")."""
    return re.sub(r"[\s*_`]+", "", text).lower()


# -- playing them (run in a subprocess, with the code under test first on the path) -------------------------


def play(conversations: Sequence[Conversation], systems: Sequence[str], code: Path, home: Path) -> Iterator[dict]:
    """Each conversation through `code`'s KefuService, once per system (`kefu`: one session; `no history`: a new
    session per turn), over each knowledge base ingested into its own KEFU_HOME under `home`; a record per turn."""
    import app
    from app.services import KefuService

    if not Path(app.__file__).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"the code under test should come from {code}, but app is {app.__file__}")
    for name in [n for n in os.environ if n.startswith("KEFU_")]:
        del os.environ[name]
    os.environ["KEFU_LLM"] = "extractive"
    for kb in sorted({c.kb for c in conversations}):
        os.environ["KEFU_HOME"] = str(home / re.sub(r"\W+", "-", kb))
        service = KefuService()
        report = service.ingest([ROOT / kb])
        if report.summary["failed"]:
            raise SystemExit(f"ingesting {kb} failed: {report.to_dict()['files']}")
        paths = {d.doc_id: _relative(d.source, ROOT / kb) for d in service.documents()}
        for c in (c for c in conversations if c.kb == kb):
            for system in systems:
                session = None
                for i, turn in enumerate(c.turns):
                    started = time.perf_counter()
                    try:
                        a = service.ask(turn.ask, session if system == "kefu" else None)
                    except Exception as exc:  # a failed turn is a wrong answer, and the run goes on
                        yield {"system": system, "conv": c.id, "turn": i, "mode": "error", "answer": repr(exc),
                               "docs": [], "query": None, "ms": 0}  # fmt: skip
                        continue
                    session = a.session_id
                    cited = [s for s in a.sources if a.mode != "generated" or s.get("cited")]
                    yield {
                        "system": system, "conv": c.id, "turn": i, "mode": a.mode, "answer": a.answer,
                        "docs": [paths.get(s.get("doc_id"), s.get("source")) for s in cited], "query": a.query,
                        "confidence": a.confidence, "ms": int((time.perf_counter() - started) * 1000),
                    }  # fmt: skip
        service.close()


def _relative(source: str, kb: Path) -> str:
    try:
        return Path(source).resolve().relative_to(kb.resolve()).as_posix()
    except ValueError:
        return source


def write_conversations(conversations: Sequence[Conversation], path: Path) -> Path:
    """The conversations as one JSONL file (what every player reads, so all play the same turns)."""
    rows = [
        {"conv": c.id, "kb": c.kb, "ask": t.ask, "docs": list(t.docs) if t.covered else NOT_COVERED,
         "fact": list(t.fact), "mode": t.mode, "tags": list(t.tags)}
        for c in conversations for t in c.turns
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def run_player(code: Path, conversations: Path, systems: Sequence[str], work: Path) -> list[dict]:
    """`play` in a subprocess of this script with `code` first on PYTHONPATH; its records."""
    out = work / f"records-{len(list(work.glob('records-*')))}.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env["PYTHONPATH"] = os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])])
    command = [sys.executable, str(Path(__file__).resolve()), "--play", "--code", str(code), "--out", str(out),
               "--systems", ",".join(systems), "--conversations", str(conversations)]  # fmt: skip
    subprocess.run(command, env=env, cwd=work, check=True)
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]


@contextlib.contextmanager
def worktree(ref: str, parent: Path) -> Iterator[Path]:
    """A detached git worktree of `ref` in a temporary folder under `parent`, removed afterwards."""
    path = parent / f"baseline-{re.sub(r'[^0-9A-Za-z]+', '-', ref)}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), ref], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


# -- judging ------------------------------------------------------------------------------------------------

_STOP = set(
    "the a an and or but for of to in on at by with from is are was were be do does did can could would will "
    "should may my me i you your we our it its this that these those what when where which who how why there "
    "have has had get got not no yes if then than so also any some all more much many about into out up".split()
)  # fmt: skip


def words(text: str) -> set[str]:
    """Content words of `text` for the contamination check: English words of 3+ letters that are not stop words,
    and Chinese character pairs."""
    text = text.lower()
    latin = {w for w in re.findall(r"[a-z][a-z0-9'-]{2,}", text) if w not in _STOP}
    cjk = {a + b for run in re.findall(r"[\u4e00-\u9fff]+", text) for a, b in zip(run, run[1:])}
    return latin | cjk


@dataclass
class Verdict:
    right: bool
    why: str  # "" when right
    cause: str = ""  # the failure's class (CAUSES), "" when right
    contaminated: bool | None = None  # topic-switch turns only
    carried: list[str] = field(default_factory=list)  # earlier words in the searched query


def judge(conversation: Conversation, index: int, record: Mapping) -> Verdict:
    turn = conversation.turns[index]
    mode = record["mode"]
    if turn.mode == DECLINED:
        right = mode in DECLINED_MODES
        verdict = Verdict(True, "") if right else Verdict(False, f"answered ({mode}) a not-covered one", "answered")
    elif mode not in ANSWERED_MODES:
        verdict = Verdict(False, f"{mode} instead of an answer", "declined" if mode in DECLINED_MODES else mode)
    elif not set(record["docs"]) & set(turn.docs):
        verdict = Verdict(False, f"cites {record['docs']}, not {list(turn.docs)}", "wrong document")
    elif not any(normalise(f) in normalise(record["answer"]) for f in turn.fact):
        verdict = Verdict(False, f"the fact {list(turn.fact)} is not in the answer", "fact missing")
    else:
        verdict = Verdict(True, "")
    right = verdict.right
    if "topic-switch" in turn.tags:
        earlier = set().union(*(words(t.ask) for t in conversation.turns[:index]))
        verdict.carried = sorted((words(record.get("query") or "") - words(turn.ask)) & earlier)
        earlier_docs = {d for t in conversation.turns[:index] for d in t.docs} - set(turn.docs)
        inherited = not right and bool(set(record["docs"]) & earlier_docs)
        verdict.contaminated = bool(verdict.carried) or inherited
        if verdict.contaminated and right:
            verdict.why = f"right, but searched with earlier words {verdict.carried}"
    return verdict


def figures(conversations: Sequence[Conversation], records: Sequence[Mapping], system: str) -> dict[str, dict]:
    """{kb or "all": {figure: (count, total)}} for one system's records."""
    by_turn = {(r["conv"], r["turn"]): r for r in records if r["system"] == system}
    out: dict[str, dict] = {}
    for c in conversations:
        for i, turn in enumerate(c.turns):
            record = by_turn.get((c.id, i))
            if record is None:
                continue
            v = judge(c, i, record)
            keys = []
            if turn.covered:
                keys.append("first-turn accuracy" if i == 0 else "follow-up accuracy")
                if i > 0:
                    keys += [f"  follow-ups: {tag}" for tag in turn.tags if tag != "not-covered"]
            else:
                keys.append("out-of-scope declined")
            for scope in (c.kb, "all"):
                table = out.setdefault(scope, {})
                for key in keys:
                    n, total = table.get(key, (0, 0))
                    table[key] = (n + v.right, total + 1)
                if v.contaminated is not None:
                    n, total = table.get("topic-switch contamination", (0, 0))
                    table["topic-switch contamination"] = (n + v.contaminated, total + 1)
    return out


# -- the report ---------------------------------------------------------------------------------------------

MAIN_FIGURES = ("first-turn accuracy", "follow-up accuracy", "topic-switch contamination", "out-of-scope declined")
TARGETS = {"first-turn accuracy": "≥ 0.95", "follow-up accuracy": "≥ 0.90",
           "topic-switch contamination": "≤ 0.05", "out-of-scope declined": "≥ 0.95"}  # fmt: skip


def _cell(pair: tuple[int, int] | None) -> str:
    if not pair or not pair[1]:
        return "n/a"
    return f"{pair[0] / pair[1]:.2f} ({pair[0]}/{pair[1]})"


def _ratio(a: tuple[int, int] | None, b: tuple[int, int] | None) -> str:
    if not a or not b or not a[1] or not b[1] or not b[0]:
        return "n/a"
    return f"{(a[0] / a[1]) / (b[0] / b[1]):.2f}"


def print_table(results: Mapping[str, dict], systems: Sequence[str], scopes: Sequence[str], breakdown: bool) -> None:
    others = [s for s in systems if s != "kefu"]
    header = ["figure", "knowledge base", "target", "kefu", *others, *[f"kefu / {s}" for s in others]]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    names = list(MAIN_FIGURES)
    if breakdown:
        names += sorted({k for r in results.values() for t in r.values() for k in t if k.startswith("  ")})
    for name in names:
        for scope in scopes:
            cells = [results[s].get(scope, {}).get(name) for s in systems]
            if not any(cells):
                continue
            ratios = [_ratio(cells[0], results[s].get(scope, {}).get(name)) for s in others]
            row = [name.strip(), scope, TARGETS.get(name, ""), *map(_cell, cells), *ratios]
            print("| " + " | ".join(row) + " |")


def print_causes(conversations: Sequence[Conversation], records: Sequence[Mapping], systems: Sequence[str]) -> None:
    """How many turns each system got wrong, by cause: declined a covered question, cited the wrong document,
    missed the fact (right document, wrong sentence), answered a not-covered one; and contaminated switches."""
    index = {c.id: c for c in conversations}
    counts: dict[str, dict[str, int]] = {s: {} for s in systems}
    for r in records:
        c = index.get(r["conv"])
        if c is None or r["system"] not in counts or r["turn"] >= len(c.turns):
            continue
        v = judge(c, r["turn"], r)
        for cause in [v.cause] * (not v.right) + ["contaminated switch"] * bool(v.contaminated):
            key = ("first turn: " if r["turn"] == 0 else "follow-up: ") + cause
            counts[r["system"]][key] = counts[r["system"]].get(key, 0) + 1
    print("| failed turns by cause | " + " | ".join(systems) + " |")
    print("|" + "---|" * (len(systems) + 1))
    for key in sorted({k for c in counts.values() for k in c}):
        print(f"| {key} | " + " | ".join(str(counts[s].get(key, 0)) for s in systems) + " |")


def print_failures(conversations: Sequence[Conversation], records: Sequence[Mapping], system: str) -> None:
    by_turn = {(r["conv"], r["turn"]): r for r in records if r["system"] == system}
    fresh = {(r["conv"], r["turn"]): r for r in records if r["system"] == "no history"}
    print(f"\n## Failures of `{system}` (with whether the same turn asked alone, `no history`, was right)")
    for c in conversations:
        for i, turn in enumerate(c.turns):
            r = by_turn.get((c.id, i))
            if r is None:
                continue
            v = judge(c, i, r)
            if v.right and not v.contaminated:
                continue
            answer = " ".join(str(r["answer"]).split())[:220]
            expected = f"{list(turn.docs)} {list(turn.fact)}" if turn.covered else NOT_COVERED
            alone = fresh.get((c.id, i))
            alone_right = alone is not None and judge(c, i, alone).right
            alone_note = "" if alone is None or i == 0 else "; alone: " + ("right" if alone_right else "wrong")
            confidence = "" if r.get("confidence") is None else f" confidence {r['confidence']:.3f}"
            print(f"- {c.id} turn {i + 1} [{', '.join(turn.tags) or 'plain'}] {turn.ask!r}\n"
                  f"    expected {turn.mode}: {expected}\n"
                  f"    got {r['mode']}{confidence} {r['docs']} searched {r['query']!r}: {answer}\n"
                  f"    why: {v.why}{alone_note}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="list every failed turn of this code")
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="the git ref of 'before #16' ('none': skip it)")
    parser.add_argument("--held-back", action="store_true", help="play the held-back conversations (final check only)")
    parser.add_argument("--conversations", type=Path, action="append", help="conversation files (default: all)")
    parser.add_argument("--json", type=Path, help="write every turn's record and verdict here")
    parser.add_argument("--play", action="store_true", help=argparse.SUPPRESS)  # the subprocess's side
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--systems", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = args.conversations or ([HELD_BACK] if args.held_back else CONVERSATIONS)
    conversations = read_conversations(files)

    if args.play:
        sys.path.insert(0, str(args.code))
        with tempfile.TemporaryDirectory(prefix="kefu-conv-home-") as home, args.out.open("w", encoding="utf-8") as fh:
            for record in play(conversations, args.systems.split(","), args.code, Path(home)):
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return

    problems = check_conversations(conversations)
    if problems:
        raise SystemExit("the conversations are not well labelled:\n" + "\n".join(problems))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-conv-") as tmp:
        work = Path(tmp)
        snapshot = write_conversations(conversations, work / "conversations.jsonl")
        records = run_player(ROOT, snapshot, ["kefu", "no history"], work)
        systems = ["kefu", "no history"]
        if args.baseline_ref.lower() != "none":
            with worktree(args.baseline_ref, work) as code:
                records += [dict(r, system="before #16") for r in run_player(code, snapshot, ["kefu"], work)]
            systems.append("before #16")
    seconds = time.perf_counter() - started

    turns = sum(len(c.turns) for c in conversations)
    kbs = sorted({c.kb for c in conversations})
    per_kb = ", ".join(f"{kb}: {sum(c.kb == kb for c in conversations)}" for kb in kbs)
    languages = ", ".join(f"{lang}: {sum(c.language == lang for c in conversations)}" for lang in ("en", "zh"))
    print(f"# Kefu conversations, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs), {seconds:.0f} s; "
          f"{len(conversations)} conversations ({per_kb}; opening in {languages}), {turns} turns; "
          f"default settings, no language model; before #16 = {args.baseline_ref}\n")  # fmt: skip
    results = {s: figures(conversations, records, s) for s in systems}
    print_table(results, systems, [*kbs, "all"], breakdown=False)
    print("\n### Follow-ups by what they test (all knowledge bases)\n")
    by_tag = {s: {"all": {k: v for k, v in r.get("all", {}).items() if k.startswith("  ")}} for s, r in results.items()}
    print_table(by_tag, systems, ["all"], breakdown=True)
    print()
    print_causes(conversations, records, systems)
    if args.verbose:
        print_failures(conversations, records, "kefu")
    if args.json:
        index = {c.id: c for c in conversations}
        rows = [dict(r, **judge(index[r["conv"]], r["turn"], r).__dict__) for r in records]
        args.json.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
