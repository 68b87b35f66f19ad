"""The OpenAI-compatible routes: `POST /v1/chat/completions` (streamed by server-sent events, or whole) and
`GET /v1/models`, so the official `openai` client, LangChain's `ChatOpenAI` and any chat widget built for
OpenAI talk to Kefu unchanged.

The client sends the conversation; Kefu answers its last user message from the knowledge base, statelessly
(`app.dialogue.completions`: nothing is stored). Citations `[n]` stay in the text; the sources, the answer's mode and
confidence go in an extra top-level `kefu` field (on the last chunk when streamed), which OpenAI clients ignore.
`usage` is given when a language model wrote the answer (its prompt and answer tokens). Sampling parameters
(`temperature`, `max_tokens`...) and the `model` name are accepted and not used: Kefu's settings decide.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from app.access.gate import Acting
from app.dialogue.completions import ChatMessage, message_text
from api import sse
from api.errors import request_id
from api.security import chat_access

MODEL_ID = "kefu"
router = APIRouter(tags=["OpenAI-compatible"])


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: Any = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(MODEL_ID, description="Accepted and not used: Kefu answers with its configured model.")
    messages: list[Message] = Field(description="The conversation, oldest first; the last one is the customer's.")
    stream: bool = Field(False, description="Stream the answer as server-sent events.")


@router.get("/v1/models", summary="The one model Kefu serves")
def models(access: Acting = Depends(chat_access)) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "kefu"}]}


def kefu_field(answer) -> dict[str, Any]:
    """What OpenAI's format has no place for: the sources behind the [n] citations, the mode, the confidence,
    whether the answer came from the answer cache."""
    d = answer.to_dict()
    return {k: d[k] for k in ("mode", "confidence", "sources", "language", "query", "intent", "latency_ms", "cached")}


@router.post("/v1/chat/completions", summary="Answer the conversation's last user message from the knowledge base")
def chat_completions(body: ChatRequest, request: Request, access: Acting = Depends(chat_access)):
    messages = [ChatMessage(m.role, message_text(m.content)) for m in body.messages]
    reply = access.complete_stream(messages)
    first, rest = sse.first_and_rest(reply)  # errors at the start get their status code
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    state = request.scope.setdefault("state", {})
    if not body.stream:
        for _ in rest:
            pass
        answer = reply.answer
        state["kefu_mode"] = answer.mode
        out = {
            "id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}],
            "kefu": kefu_field(answer),
        }  # fmt: skip
        if reply.usage is not None:
            out["usage"] = reply.usage.to_dict()
        return out

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse.event({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                          "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})  # fmt: skip

    def events() -> Iterator[str]:
        try:
            yield chunk({"role": "assistant", "content": ""})
            if first:
                yield chunk({"content": first})
            for piece in rest:
                if piece:
                    yield chunk({"content": piece})
            answer = reply.answer
            state["kefu_mode"] = answer.mode
            counted = {"usage": reply.usage.to_dict()} if reply.usage is not None else {}
            yield chunk({}, "stop", kefu=kefu_field(answer), **counted)
        except Exception as exc:  # noqa: BLE001 - the stream has begun: tell the client inside it
            yield sse.error_event(exc, request_id(request))
        yield sse.DONE

    return sse.stream(events())
