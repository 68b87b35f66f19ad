"""Agent assist: what helps a person answer a handed-over conversation.

- **Suggested reply**: the stateless answerer drafts an answer from the knowledge base to the customer's latest
  question, with the conversation's earlier messages and slots as context, exactly as the assistant would have
  answered it. The draft is returned, never stored: it becomes a message only when the agent sends it.
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
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.answering.answerer import checked_question
from app.answering.rules import Answer
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
EXTRA_COLUMNS = ("author", "saved_at")
_LOCK = threading.Lock()


@dataclass
class Suggestion:
    """A draft reply to the customer's latest question: not stored, not sent."""

    question: str
    question_id: int
    answer: Answer

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "question_id": self.question_id, **self.answer.to_dict()}


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
    answer = answerer.answer(message.content, history_items(recent[:latest]), conversation.slots)
    answer.session_id = conversation_id
    return Suggestion(message.content, message.id, answer)


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
