"""The OpenAI-compatible routes: `POST /v1/chat/completions` (streamed by server-sent events, or whole) and
`GET /v1/models`, so the official `openai` client, LangChain's `ChatOpenAI` and any chat widget built for
OpenAI talk to Kefu unchanged.

The client sends the conversation; Kefu answers its last user message from the knowledge base, statelessly
(`app.dialogue.completions`: nothing is stored). Citations `[n]` stay in the text; the sources, the answer's mode and
confidence go in an extra top-level `kefu` field (on the chunk with `finish_reason` when streamed), which OpenAI
clients ignore. With KEFU_OPENAI_SOURCES_FOOTER the sources are also appended to the text, for clients that show
only text. A whole completion always carries `usage` (the model's own count when a model wrote the answer, else
Kefu's estimate: `app.dialogue.completions.usage`); a stream carries it, as OpenAI's does, only when asked with
`stream_options: {"include_usage": true}`: `"usage": null` on every chunk, then one last chunk with no choices
and the usage. Sampling parameters (`temperature`, `max_tokens`...) and the `model` name are accepted and not
used: Kefu's settings decide.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from app.access.gate import Acting
from app.dialogue.completions import ChatMessage, message_text, sources_footer, usage
from api import sse
from api.errors import request_id
from api.security import chat_access

MODEL_ID = "kefu"
router = APIRouter(tags=["OpenAI-compatible"])


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: Any = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = Field(False, description="Send a last chunk with the token usage (and `usage: null` before).")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(MODEL_ID, description="Accepted and not used: Kefu answers with its configured model.")
    messages: list[Message] = Field(description="The conversation, oldest first; the last one is the customer's.")
    stream: bool = Field(False, description="Stream the answer as server-sent events.")
    stream_options: StreamOptions | None = Field(None, description="With `include_usage`, a stream ends with the usage.")


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
    footer = request.app.state.service.settings.serve.openai_sources_footer
    if not body.stream:
        for _ in rest:
            pass
        answer = reply.answer
        state["kefu_mode"] = answer.mode
        content = answer.answer + (sources_footer(answer.sources, answer.language) if footer else "")
        return {
            "id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": usage(reply, messages).to_dict(), "kefu": kefu_field(answer),
        }  # fmt: skip

    counted = body.stream_options is not None and body.stream_options.include_usage

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> str:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return sse.event({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                          "choices": choices, **({"usage": None} if counted else {}), **extra})  # fmt: skip

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
            if footer and answer.sources:
                yield chunk({"content": sources_footer(answer.sources, answer.language)})
            yield chunk({}, "stop", kefu=kefu_field(answer))
            if counted:
                yield chunk(None, usage=usage(reply, messages).to_dict())
        except Exception as exc:  # noqa: BLE001 - the stream has begun: tell the client inside it
            yield sse.error_event(exc, request_id(request))
        yield sse.DONE

    return sse.stream(events(), reply)
