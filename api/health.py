"""Health and metrics, without a key: `/healthz` (the process answers), `/readyz` (the knowledge store answers
and the warm-up has loaded what answers need, the language model included when one is configured; 503 with
the reason otherwise) and `/metrics` (Prometheus' text format, `app.metrics`: counts, sizes and times only,
never text; keep it on a network your Prometheus reaches and customers do not).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from app import metrics
from api.errors import error_response

router = APIRouter(tags=["operations"])
log = logging.getLogger("kefu.api")


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to answer: the store answers and the models are loaded")
def readyz(request: Request):
    service = request.app.state.service
    warm = service.warm_up_state
    if warm is not None and not warm.ready:
        if warm.error:
            log.error('{"readyz": "warm-up failed; the first question reports why"}')
            return error_response(503, "not ready: the warm-up failed (see the server log)")
        return error_response(503, "not ready: loading the knowledge base and models", retry_after=5)
    try:
        ready = service.readiness()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the store means not ready
        log.error('{"readyz": "store unreachable: %s"}', type(exc).__name__)
        return error_response(503, "not ready: the knowledge store does not answer (see the server log)", retry_after=5)
    return {"status": "ready", **ready}


@router.get("/metrics", summary="Prometheus metrics")
def prometheus() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
