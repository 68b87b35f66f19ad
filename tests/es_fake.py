"""A scripted Elasticsearch at the HTTP boundary, for unit tests that cannot have a real server.

`FakeServer.client()` is the real official client (built by Kefu's own `make_client`) whose transport hands each
request to a fake node instead of a socket: the client's serialisers, headers, retries and error mapping all
run, and the server sees the exact bytes (JSON, or NDJSON for _bulk and _msearch). Tests script answers by
method and path, and read back every request. It is deliberately not an Elasticsearch: it keeps no index and
ranks nothing; the contract suite runs against a real server for that (`make test-es`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse  # the documented return type of BaseNode.perform_request

from rag.elasticsearch.config import ElasticsearchConfig
from rag.elasticsearch.connection import make_client

Handler = Callable[["Request"], tuple[int, Any]]


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    raw: bytes | None

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    @property
    def lines(self) -> list[Any]:
        """The NDJSON lines of a _bulk or _msearch body."""
        return [json.loads(line) for line in (self.raw or b"").decode().splitlines() if line.strip()]


@dataclass
class FakeServer:
    version: str = "8.15.0"
    build_flavor: str = "default"
    requests: list[Request] = field(default_factory=list)
    routes: list[tuple[str, re.Pattern, Handler]] = field(default_factory=list)

    def on(self, method: str, path: str, handler: Handler | tuple[int, Any]) -> None:
        """Answer `method` requests whose path fully matches the regex `path` (latest rule first)."""
        answer = handler if callable(handler) else (lambda _request, fixed=handler: fixed)
        self.routes.insert(0, (method, re.compile(path), answer))

    def handle(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        url = urlsplit(target)
        request = Request(method, url.path, dict(parse_qsl(url.query)), headers, body)
        self.requests.append(request)
        for m, pattern, handler in self.routes:
            if m == method and pattern.fullmatch(url.path):
                return handler(request)
        if method == "GET" and url.path == "/":
            return 200, {"version": {"number": self.version, "build_flavor": self.build_flavor}, "tagline": "You Know, for Search"}
        return 404, {"error": {"type": "fake_route_missing", "reason": f"no fake answer for {method} {url.path}"}, "status": 404}

    def sent(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.fullmatch(path, r.path)]

    def node_class(self) -> type[BaseNode]:
        server = self

        class FakeNode(BaseNode):
            def perform_request(self, method, target, body=None, headers=None, request_timeout=None):
                status, payload = server.handle(method, target, body, dict(headers or {}))
                response_headers = HttpHeaders(
                    {"content-type": "application/vnd.elasticsearch+json;compatible-with=8", "x-elastic-product": "Elasticsearch"}
                )
                meta = ApiResponseMeta(status=status, http_version="1.1", headers=response_headers, duration=0.0, node=self.config)
                return NodeApiResponse(meta, json.dumps(payload).encode() if payload is not None else b"")

        return FakeNode

    def client(self, config: ElasticsearchConfig) -> Any:
        return make_client(config, node_class=self.node_class())


def bulk_answer(statuses: dict[str, int] | None = None, reasons: dict[str, str] | None = None) -> Handler:
    """A _bulk handler: every item succeeds except those whose _id is in statuses (with that status)."""
    statuses, reasons = statuses or {}, reasons or {}

    def answer(request: Request) -> tuple[int, Any]:
        items = []
        for line in request.lines:
            if len(line) == 1 and next(iter(line)) in ("index", "create", "delete", "update"):
                ((op, meta),) = line.items()
                status = statuses.get(meta["_id"], 200 if op != "index" else 201)
                item: dict[str, Any] = {"_index": "kefu-index-1", "_id": meta["_id"], "status": status}
                if status >= 300 and not (op == "delete" and status == 404):
                    kind = "es_rejected_execution_exception" if status == 429 else "document_parsing_exception"
                    item["error"] = {"type": kind, "reason": reasons.get(meta["_id"], "rejected")}
                items.append({op: item})
        return 200, {"took": 1, "errors": any("error" in next(iter(i.values())) for i in items), "items": items}

    return answer


def with_generation(server: FakeServer, index: str = "kefu-generation") -> FakeServer:
    """Script the store's generation row (`ElasticsearchStore.generation`): a counter that the update adds one
    to and the realtime get reads (404 until the first update, as on a fresh cluster)."""
    state = {"value": 0}

    def update(request: Request) -> tuple[int, Any]:
        state["value"] += 1
        return 200, {"_index": index, "_id": "generation", "result": "updated", "_version": state["value"]}

    def get(_request: Request) -> tuple[int, Any]:
        if not state["value"]:
            return 404, {"_index": index, "_id": "generation", "found": False}
        return 200, {"_index": index, "_id": "generation", "found": True, "_source": {"value": state["value"]}}

    server.on("POST", f"/{index}/_update/generation", update)
    server.on("GET", f"/{index}/_doc/generation", get)
    return server
