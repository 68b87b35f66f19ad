"""REST under `/api/v1`: Kefu's own conversations (the dialogue manager, stored, with handoff to agents),
feedback, the agents' queue and replies, documents, search, and erasure. Every route names the role it needs
(`api.security.needs`) and calls the gate (`app.access.gate`), which checks it again.

| Role     | Routes |
|----------|--------|
| customer | ask (new or own conversation), read / erase own conversation, ask for a person, rate an answer |
| agent    | the handoff queue, any transcript, take / reply / release / resolve, search |
| admin    | documents: upload (multipart, the ingest limits), list, delete; erase any conversation |

`POST /api/v1/ask` answers with the same JSON as `kefu ask --json`; with `"stream": true` it sends server-sent
events `{"delta": text}` as the answer is written, then `{"answer": {...}}` and `[DONE]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel, Field

from app.access.gate import Acting
from app.access.auth import ADMIN, AGENT, CUSTOMER
from app.errors import InputError
from app.dialogue.handoff import WAITING
from api import sse
from api.errors import request_id
from api.security import needs

router = APIRouter(prefix="/api/v1")
customer, agent, admin = Depends(needs(CUSTOMER)), Depends(needs(AGENT)), Depends(needs(ADMIN))


class AskBody(BaseModel):
    question: str = Field(description="The customer's message.")
    session_id: str | None = Field(None, description="Continue this conversation (one this key started); a new one when absent.")
    customer_id: str | None = Field(None, description="Your id for the customer (what `kefu erase --user` erases by).")
    stream: bool = Field(False, description="Stream the answer as server-sent events.")


class FeedbackBody(BaseModel):
    message_id: int = Field(description="The answer's `message_id` (from ask).")
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=2000)


class ReplyBody(BaseModel):
    text: str = Field(description="The agent's message to the customer.")


# -- customers --------------------------------------------------------------------------------------------


@router.post("/ask", tags=["conversations"], summary="Answer a customer's message in a Kefu conversation")
def ask(body: AskBody, request: Request, access: Acting = customer):
    reply = access.ask_stream(body.question, body.session_id, body.customer_id)
    first, rest = sse.first_and_rest(reply)
    state = request.scope.setdefault("state", {})
    if not body.stream:
        for _ in rest:
            pass
        state["kefu_mode"] = reply.answer.mode
        return reply.answer.to_dict()

    def events() -> Iterator[str]:
        try:
            if first:
                yield sse.event({"delta": first})
            for piece in rest:
                if piece:
                    yield sse.event({"delta": piece})
            state["kefu_mode"] = reply.answer.mode
            yield sse.event({"answer": reply.answer.to_dict()})
        except Exception as exc:  # noqa: BLE001 - the stream has begun: tell the client inside it
            yield sse.error_event(exc, request_id(request))
        yield sse.DONE

    return sse.stream(events())


@router.get("/sessions/{session_id}", tags=["conversations"], summary="A conversation and its messages")
def transcript(session_id: str, access: Acting = customer) -> dict[str, Any]:
    conversation = access.conversation(session_id)
    return {**conversation.to_dict(), "messages": [m.to_dict() for m in access.history(session_id)]}


@router.post("/sessions/{session_id}/handoff", tags=["conversations"], summary="Ask for a person")
def request_human(session_id: str, access: Acting = customer) -> dict[str, Any]:
    return access.request_human(session_id).to_dict()


@router.delete("/sessions/{session_id}", tags=["conversations"], summary="Erase a conversation and all that refers to it")
def erase(session_id: str, access: Acting = customer) -> dict[str, Any]:
    counts = access.erase(session_id)
    return {k: v for k, v in counts.items() if k != "sessions"}


@router.post("/feedback", tags=["conversations"], summary="Rate an answer helpful (up) or not (down)")
def feedback(body: FeedbackBody, access: Acting = customer) -> dict[str, Any]:
    return access.feedback(body.message_id, body.rating, body.comment).to_dict()


# -- agents -----------------------------------------------------------------------------------------------


@router.get("/handoff/queue", tags=["agents"], summary="Conversations waiting for a person, longest first")
def queue(limit: int = Query(100, ge=1, le=1000), access: Acting = agent) -> dict[str, Any]:
    waiting = access.conversations(WAITING, limit)
    return {"sessions": [c.to_dict() for c in waiting]}


@router.post("/sessions/{session_id}/take", tags=["agents"], summary="Take a conversation")
def take(session_id: str, access: Acting = agent) -> dict[str, Any]:
    return access.take(session_id).to_dict()


@router.post("/sessions/{session_id}/reply", tags=["agents"], summary="Reply to the customer as an agent")
def agent_reply(session_id: str, body: ReplyBody, access: Acting = agent) -> dict[str, Any]:
    return access.agent_reply(session_id, body.text).to_dict()


@router.post("/sessions/{session_id}/release", tags=["agents"], summary="Hand a conversation back to the assistant")
def release(session_id: str, access: Acting = agent) -> dict[str, Any]:
    return access.release(session_id).to_dict()


@router.post("/sessions/{session_id}/resolve", tags=["agents"], summary="Mark a conversation resolved")
def resolve(session_id: str, access: Acting = agent) -> dict[str, Any]:
    return access.resolve(session_id).to_dict()


@router.get("/search", tags=["agents"], summary="Search the knowledge base (every audience)")
def search(q: str = Query(description="What to look for."), k: int = Query(10, ge=1, le=100),
           mode: Literal["hybrid", "lexical", "dense"] = "hybrid", access: Acting = agent) -> dict[str, Any]:  # fmt: skip
    return {"query": q, "mode": mode, "results": [h.to_dict() for h in access.search(q, k, mode)]}


# -- admins -----------------------------------------------------------------------------------------------


@router.get("/documents", tags=["documents"], summary="The documents in the knowledge base")
def documents(access: Acting = admin) -> dict[str, Any]:
    return {"documents": [d.to_dict() for d in access.documents()]}


@router.post("/documents", tags=["documents"], summary="Upload documents (multipart `files`) and index them")
def upload(files: list[UploadFile] = File(description="One or more files (at most KEFU_MAX_UPLOAD_FILES)."),
           access: Acting = admin) -> dict[str, Any]:  # fmt: skip
    uploads = []
    for f in files:
        if not f.filename:
            raise InputError("every uploaded file needs a file name")
        uploads.append((f.filename, f.file.read()))
    return access.ingest_uploads(uploads).to_dict()


@router.delete("/documents/{doc_id}", tags=["documents"], summary="Delete a document and its chunks")
def delete_document(doc_id: str, access: Acting = admin) -> dict[str, Any]:
    deleted = access.delete_documents([doc_id])
    if not deleted:
        from app.errors import NotFoundError

        raise NotFoundError(f"no document {doc_id!r}: see GET /api/v1/documents")
    return {"deleted": deleted}
