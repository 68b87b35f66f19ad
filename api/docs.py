"""The interactive API docs at `/docs`, served from this machine: Swagger UI's script, styles and icon come from
`/docs/assets/`, never from a CDN, so the page works on a network without the internet (FastAPI's own `/docs`
loads them from jsDelivr and stays blank there). The files are Swagger UI 5 (it reads the OpenAPI 3.1 schema
FastAPI writes; Swagger UI 4, as in `swagger-ui-bundle`, cannot), as shipped inside the `fastapi-offline`
package, pinned exactly in pyproject.toml because Kefu reads its `static` folder directly. `/redoc` is off: ReDoc
loads its logo from Redocly's CDN whatever it is given. The schema stays at `/openapi.json`.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_FOLDER = Path(fastapi_offline.__file__).parent / "static"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def install(app: FastAPI) -> None:
    """Serve /docs from the packaged files (the app is made with `docs_url=None, redoc_url=None`)."""
    missing = [name for name in ASSETS if not (ASSETS_FOLDER / name).is_file()]
    if missing:  # a release that moved its files: fail at start-up, not with a blank page
        raise RuntimeError(f"fastapi-offline has no {', '.join(missing)} in {ASSETS_FOLDER}: install the version "
                           "pyproject.toml pins")  # fmt: skip
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_FOLDER), name="docs-assets")
    schema = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=schema,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
