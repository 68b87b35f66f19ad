"""`create_app(settings)`: the FastAPI application of `kefu serve`, put together from the routers (`api.
openai_routes`, `api.rest`, `api.health`, `api.widget` with the website widget's script), the request middleware (`api.middleware`), CORS (KEFU_CORS_ORIGINS)
and the error handlers (`api.errors`). One `KefuService` per worker process, built here and shared by every
request (it is thread-safe); its warm-up starts when the server does, so `/readyz` turns ready once the models
are loaded. OpenAPI docs at `/docs`, served from local files (`api.docs`).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import docs, errors, health, openai_routes, rest, widget
from api.middleware import RequestMiddleware
from app.settings import Settings, load_settings

DESCRIPTION = """Kefu answers customers from your knowledge base, with citations.

- **OpenAI-compatible**: `POST /v1/chat/completions` (streamed or not), `GET /v1/models`; sources, mode and
  confidence in the extra `kefu` field.
- **REST** under `/api/v1`: conversations, feedback, the agents' handoff queue, documents, search, erasure.
- **Auth**: `Authorization: Bearer <key>`, keys from `kefu keys create --role customer|agent|admin`.
- **Website widget**: `/widget.js` and the routes it calls under `/widget/v1` (website visitors, with a widget
  key from `kefu keys create --role widget --origin https://shop.example`).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    from app.services import KefuService

    settings = settings or load_settings()
    service = KefuService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.warm_up()
        yield
        service.close()

    app = FastAPI(title="Kefu", description=DESCRIPTION, version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    errors.install(app)
    docs.install(app)
    app.include_router(openai_routes.router)
    app.include_router(rest.router)
    app.include_router(health.router)
    origins = [o.strip() for o in settings.serve.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"], expose_headers=["X-Request-ID", "Retry-After"],
        )  # fmt: skip
    s = settings.serve
    upload_bytes = settings.guardrails.max_upload_files * settings.ingest.max_file_mb * 1024 * 1024 + 1024 * 1024
    app.add_middleware(RequestMiddleware, max_requests=s.max_requests, max_body_bytes=s.max_body_kb * 1024,
                       max_upload_bytes=upload_bytes)  # fmt: skip
    widget.install(app, service, settings.widget.widget_streams)  # last: its CORS is the outermost middleware
    return app
