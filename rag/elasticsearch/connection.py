"""The connection to Elasticsearch: builds the official client from an `ElasticsearchConfig`, checks that the
server is Elasticsearch 8.12+ (or Serverless), and turns the client's exceptions into `StoreError`s that say
what to do (start the server, fix the URL, the credentials, the CA certificate, the privileges), or into None
where a 404 is an answer (`if_found`: no alias yet, no such row).

The client is the 8.x line (see pyproject.toml): its `compatible-with=8` headers are what 8.x servers speak
natively and what 9.x servers accept through REST API compatibility. Knows nothing about Kefu's index.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from rag.elasticsearch.config import ElasticsearchConfig
from rag.elasticsearch.requests import MIN_SERVER, is_serverless, server_version
from rag.errors import StoreError

# Statuses the transport retries for a whole request before giving up (node restarts, full write queues).
RETRY_ON_STATUS = (429, 502, 503, 504)
MAX_RETRIES = 3
DOCKER_HINT = "see the README's `docker run` line"


def make_client(config: ElasticsearchConfig, **overrides: Any) -> Any:
    """The official client for config, with retries; connects lazily (nothing is sent yet). `overrides` go to
    the client as they are (tests pass a `node_class` that answers in-process)."""
    from elasticsearch import Elasticsearch  # imported here: the client library loads only when a store uses it

    kwargs: dict[str, Any] = {
        "request_timeout": config.timeout,
        "max_retries": MAX_RETRIES,
        "retry_on_timeout": True,
        "retry_on_status": RETRY_ON_STATUS,
    }
    if config.api_key:
        kwargs["api_key"] = config.api_key
    elif config.username is not None:
        kwargs["basic_auth"] = (config.username, config.password or "")
    if config.ca_certs is not None:
        kwargs["ca_certs"] = str(config.ca_certs)
    kwargs.update(overrides)
    hosts = [url.strip() for url in config.url.split(",") if url.strip()]
    try:
        return Elasticsearch(hosts, **kwargs)
    except ValueError as exc:  # a malformed URL
        raise StoreError(f"KEFU_ES_URL={config.url!r} is not a usable URL ({exc}): give e.g. http://localhost:9200") from exc


def check_server(info: dict[str, Any], config: ElasticsearchConfig) -> tuple[int, int]:
    """The server's (major, minor); StoreError when it is older than Kefu needs."""
    version = server_version(info)
    if is_serverless(info):
        return (9, 0)  # Serverless keeps one current API whatever number it reports
    if version < MIN_SERVER:
        number = info.get("version", {}).get("number", "?")
        raise StoreError(
            f"Elasticsearch {number} at {config.url} is too old: Kefu needs {MIN_SERVER[0]}.{MIN_SERVER[1]} or newer "
            "(for quantized int8_hnsw vectors). Upgrade the cluster, or set KEFU_STORE=sqlite"
        )
    return version


def response_body(response: Any) -> Any:
    """The decoded body of a client response (a plain value passes through)."""
    return getattr(response, "body", response)


def if_found(call: Callable[[], Any]) -> Any | None:
    """The body of `call()`'s response, or None when Elasticsearch answers 404 (no such alias, index or row)."""
    import elasticsearch  # imported here, as in make_client: start-up without an Elasticsearch store stays light

    try:
        return response_body(call())
    except elasticsearch.NotFoundError:
        return None


def user_error(exc: BaseException, config: ElasticsearchConfig, action: str) -> StoreError | None:
    """The StoreError to show for an exception from the client while doing `action`, or None if it is not
    one of the client's."""
    import elastic_transport  # imported here, as in make_client: start-up without an Elasticsearch store stays light
    import elasticsearch

    url = config.url
    if isinstance(exc, elastic_transport.TlsError):
        return StoreError(
            f"cannot verify the TLS certificate of Elasticsearch at {url} ({_short(exc)}): set KEFU_ES_CA_CERTS to "
            "the cluster's CA certificate (config/certs/http_ca.crt on a default install)"
        )
    if isinstance(exc, elastic_transport.ConnectionError):
        hint = " (the server speaks HTTPS: use https:// in KEFU_ES_URL)" if "RemoteDisconnected" in str(exc) else ""
        return StoreError(
            f"cannot reach Elasticsearch at {url}{hint}: {_short(exc)}. Start it ({DOCKER_HINT}), fix KEFU_ES_URL, "
            "or set KEFU_STORE=sqlite"
        )
    if isinstance(exc, elasticsearch.UnsupportedProductError):
        return StoreError(f"{url} does not answer as Elasticsearch does: check KEFU_ES_URL")
    if isinstance(exc, elasticsearch.AuthenticationException):
        if config.auth == "no credentials":
            fix = "this cluster needs credentials: set KEFU_ES_API_KEY, or KEFU_ES_USERNAME and KEFU_ES_PASSWORD"
        else:
            fix = f"it rejected {config.auth}: check the key or the user and password"
        return StoreError(f"Elasticsearch at {url} refused to {action}: {fix}")
    if isinstance(exc, elasticsearch.AuthorizationException):
        return StoreError(
            f"the credentials ({config.auth}) may not {action} on Elasticsearch at {url}: {_reason(exc)}. Grant "
            f"them `all` on the indices `{config.index}*` and the cluster privileges `monitor` and "
            "`manage_index_templates` (see the README's Elasticsearch section)"
        )
    if isinstance(exc, elasticsearch.ApiError):
        return StoreError(f"Elasticsearch at {url} could not {action}: {exc.status_code} {_reason(exc)}")
    if isinstance(exc, elastic_transport.TransportError):
        return StoreError(f"Elasticsearch at {url} could not {action}: {_short(exc)}")
    return None


@contextlib.contextmanager
def errors_as_store_errors(config: ElasticsearchConfig, action: str) -> Iterator[None]:
    """Run a block of client calls; the client's exceptions come out as StoreErrors a user can act on."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        translated = user_error(exc, config, action)
        if translated is None:
            raise
        raise translated from exc


def _reason(exc: Any) -> str:
    """`type: reason` of an Elasticsearch error body, or the exception's message."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        root = (error.get("root_cause") or [error])[0]
        return f"{root.get('type', error.get('type', 'error'))}: {root.get('reason', error.get('reason', ''))}"
    return str(getattr(exc, "message", exc))


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc)
    return text if len(text) <= 200 else text[:197] + "..."
