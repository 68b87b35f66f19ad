"""Agent assist: what helps a person answer a handed-over conversation.

- **Suggested reply**: the stateless answerer answers the customer's latest question from the knowledge base,
  with the conversation's earlier messages and slots as context, as the assistant would have. The agent gets a
  draft in their own voice: the answer without the assistant's intro, its citations [n] turned into the names
  of the sources the customer can see ("(Returns and Refunds Policy)"). Where the assistant would have abstained,
  the draft is empty (never the assistant's refusal) and the closest passages come with it, for the agent to
  read. The draft is returned, never stored: it becomes a message only when the agent sends it.
- **Save as FAQ**: an agent's answer (with the customer's question, both as the agent edited them) becomes an
  entry of a managed FAQ sheet, `$KEFU_HOME/faq/agent-answers.csv`, which is then indexed at once through the
  ordinary ingest pipeline. The next customer who asks the same question gets that answer in `faq` mode. The
  same question saved again replaces its answer. Writes to the sheet are serialised (a lock file), and the
  sheet is replaced atomically, so two agents saving at once both keep their entry. The knowledge gaps the
  entry answers are then closed (`KefuService.save_faq`, `app.dialogue.gaps.answered_gaps`): they leave
  Insights and `kefu gaps`.

Role checks belong to the gate (`app.access.gate`).
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.answering.answerer import checked_question
from app.answering.rules import MODE_ABSTAIN, MODE_EXTRACTIVE, MODE_HANDOFF, MODE_SMALLTALK, Answer, source_entry
from app.db.schema import utcnow
from app.dialogue.conversation import history_items
from app.dialogue.intents import QUESTION
from app.dialogue.manager import MAX_AGENT_MESSAGE_CHARS
from app.errors import InputError, KefuError

if TYPE_CHECKING:
    from app.answering.answerer import Answerer
    from app.dialogue.sessions import SessionStore
    from app.knowledge.ingestion import Ingestion
    from app.settings import Settings

FAQ_FILE = Path("faq") / "agent-answers.csv"
CLOSEST_PASSAGES = 3
EXTRA_COLUMNS = ("author", "saved_at")
_LOCK = threading.Lock()


@dataclass
class Suggestion:
    """A draft reply to the customer's latest question: not stored, not sent. `answer` is what the assistant
    would have said (its sources are what the draft rests on, or, when it abstained, the closest passages)."""

    question: str
    question_id: int
    answer: Answer
    draft: str = ""  # what the agent's reply box starts with: "" when the knowledge base has no answer

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "question_id": self.question_id, **self.answer.to_dict(), "draft": self.draft}


_CITATION_RE = re.compile(r"\s*\[(\d+)\]")


def agent_draft(answer: Answer) -> str:
    """The answer as an agent would send it: no intro line, each [n] replaced by its source's name (a customer
    cannot open a citation number); nothing when the answer is a refusal or a handover."""
    if answer.mode in (MODE_ABSTAIN, MODE_HANDOFF, MODE_SMALLTALK):
        return ""
    text = answer.answer
    if answer.mode == MODE_EXTRACTIVE:
        text = text.split("\n\n", 1)[-1]  # the assistant's "Here is what I found" intro
        text = "\n".join(line[2:] if line.startswith("- ") else line for line in text.splitlines())

    def name(match: re.Match) -> str:
        n = int(match.group(1))
        if 1 <= n <= len(answer.sources):
            title = str(answer.sources[n - 1].get("title") or "").strip()
            return f" ({title})" if title else ""
        return ""

    return _CITATION_RE.sub(name, text).strip()


def suggest_reply(answerer: Answerer, sessions: SessionStore, conversation_id: str, history_messages: int) -> Suggestion:
    """Draft an answer to the conversation's latest customer question (its latest message that was a question,
    else its latest message), given the messages before it and the conversation's slots."""
    conversation = sessions.get(conversation_id)
    recent = sessions.recent(conversation_id, history_messages)
    asked = [i for i, m in enumerate(recent) if m.role == "user"]
    if not asked:
        raise InputError("the customer has not written anything yet: there is nothing to draft a reply to")
    questions = [i for i in asked if recent[i].intent in (QUESTION, None)]
    latest = (questions or asked)[-1]
    message = recent[latest]
    history = history_items(recent[:latest])
    decision = answerer.decide(message.content, history, conversation.slots)
    answer = answerer.write(decision, history).finish()
    answer.session_id = conversation_id
    if decision.abstained:  # the passages that came closest, for the agent to read
        [found] = answerer.evidence([decision.rewrite.query])
        closest = sorted(found.judged, key=lambda j: -j.relevance)[:CLOSEST_PASSAGES]
        answer.sources = answerer.for_customer(
            Answer("", answer.mode, [source_entry(j.hit, j.relevance) for j in closest])).sources  # fmt: skip
    return Suggestion(message.content, message.id, answer, agent_draft(answer))


@dataclass
class SavedFaq:
    question: str
    answer: str
    path: str
    entries: int  # entries in the managed sheet now
    replaced: bool  # the question was there already, with another answer
    doc_id: str | None
    gaps_closed: int = 0  # knowledge-gap records the entry answered (closed by the service)


def _columns(settings: Settings) -> list[str]:
    """The sheet's header: the FAQ columns the loader looks for (KEFU_FAQ_*_COLUMN when set), then Kefu's own."""
    i = settings.ingest
    return [i.faq_question_column or "question", i.faq_answer_column or "answer", *EXTRA_COLUMNS]


def _key(question: str) -> str:
    return " ".join(question.casefold().split())


@contextmanager
def _locked(path: Path):
    """One writer at a time, across threads (a lock) and processes (flock on a lock file beside the sheet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_entries(path: Path) -> list[list[str]]:
    """The managed sheet's rows (without its header); none when it does not exist yet."""
    if not path.exists():
        return []
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    return [r for r in rows[1:] if len(r) >= 2]


def save_faq(settings: Settings, ingestion: Ingestion, question: str, answer: str, author: str) -> SavedFaq:
    """Add (or replace) the entry `question` → `answer` in the managed FAQ sheet and index the sheet now."""

    question = checked_question(question)
    answer = (answer or "").strip()
    if not answer:
        raise InputError("the answer is empty: write the answer customers should get")
    if len(answer) > MAX_AGENT_MESSAGE_CHARS:
        raise InputError(f"the answer is {len(answer)} characters long; the limit is {MAX_AGENT_MESSAGE_CHARS}")
    path = settings.core.home / FAQ_FILE
    with _locked(path):
        rows = read_entries(path)
        key = _key(question)
        replaced = False
        saved_at = utcnow().isoformat(timespec="seconds")
        for row in rows:
            if _key(row[0]) == key:
                replaced = row[1] != answer
                row[:4] = [question, answer, author, saved_at]
                break
        else:
            rows.append([question, answer, author, saved_at])
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(_columns(settings))
        writer.writerows(rows)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(out.getvalue(), encoding="utf-8")
        os.replace(partial, path)
        report = ingestion.ingest([path])
    result = report.files[0] if report.files else None
    if result is None or result.status == "failed":
        raise KefuError(f"the FAQ entry was saved in {path} but could not be indexed: {result.error if result else 'no file'}")
    return SavedFaq(question, answer, str(path), len(rows), replaced, result.doc_ids[0] if result.doc_ids else None)
