"""Kefu's HTTP API: a front end beside `ui/`, served by `kefu serve` (`python -m api` under uvicorn).

It renders `app/` for HTTP clients and nothing more: an OpenAI-compatible chat route (`api.openai_routes`), REST
under `/api/v1` (`api.rest`), health and metrics (`api.health`); API keys and role checks (`api.security`,
with the gate (`app.access.gate`) checking every call again on the server side), errors as one-line JSON (`api.errors`), and
what every request passes through (`api.middleware`). `api.app.create_app` puts them together.
"""
