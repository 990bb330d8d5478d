"""The service's own routes: ``/api/health``, ``/api/metrics``, ``/api/site``, ``/widget.js``, and JSON 404/405s.

What only operators should read — the metrics, the store's URL and the worker's pid in the health report —
is shown to a client on this machine (loopback, as ``bot.server.forwarded`` resolved it: behind a proxy
that is the visitor, not the proxy) or with ``Authorization: Bearer <BOT_METRICS_TOKEN>``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from functools import lru_cache
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from bot import policy
from bot.index import store_description
from bot.server import metrics
from bot.server.middleware import SITE_PATH, WIDGET_PATH, same_origin
from bot.server.schemas import COMMON_ERRORS, ApiError, Health, SiteAccess
from bot.server.services import Services, get_services
from bot.settings import normalise_origin

log = logging.getLogger("bot.server.routes.service")

router = APIRouter(prefix="/api", responses=COMMON_ERRORS, tags=["service"])


def privileged(request: Request, services: Services) -> bool:
    """Whether ``request`` may read the internals: from loopback, or with the metrics token."""
    token = services.settings.metrics_token
    given = request.headers.get("authorization", "")
    if token is not None and given.lower().startswith("bearer "):
        return hmac.compare_digest(given[7:].strip().encode(), token.get_secret_value().encode())
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "Not ready (why)."}})
def health(request: Request, services: Services = Depends(get_services)) -> Response:  # noqa: B008
    """Ready (200) once the index is loaded and its store answers; 503, saying why, until then."""
    settings = services.settings
    inside = privileged(request, services)
    store = store_description(settings) if inside else store_description(settings).split(" http")[0]
    found = Health(status="starting", store=store, composer=settings.composer,
                   worker=os.getpid() if inside else None, page=services.page,
                   limits=services.limiter.counters.checked_state(),
                   feedback="postgresql" if settings.database_url else "sqlite")  # fmt: skip
    engine = services.engine
    if engine is not None:
        try:
            engine.refresh()  # report the version a question would be answered from
        except Exception as error:
            if not services.is_store_failure(error):
                log.warning("checking for a newer index failed (%s)", error)
        manifest = engine.index.manifest
        found.version, found.index_version, found.passages = engine.version, manifest.version, manifest.chunk_count
        found.composer = engine.composer  # "extractive" when the configured chat model could not be loaded
        metrics.set_index_version(manifest.version)
    if services.ready:
        found.ready = services.store_reachable()
        found.status = "ready" if found.ready else "store_unavailable"
    elif engine is None and not services.store_reachable():
        found.status = "store_unavailable"
    metrics.set_ready(found.ready)
    return JSONResponse(found.model_dump(exclude_none=True), status_code=200 if found.ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format."},
        401: {"model": ApiError, "description": "Not from loopback and without the metrics token."},
    },
)
def prometheus_metrics(request: Request, services: Services = Depends(get_services)) -> Response:  # noqa: B008
    """Prometheus metrics: requests by status, stage latencies, index version, cache hit rates (all workers).

    Only from the server's own machine, or with `Authorization: Bearer <BOT_METRICS_TOKEN>`.
    """
    if not privileged(request, services):
        raise HTTPException(401, policy.NOT_AUTHORISED, headers={"WWW-Authenticate": "Bearer"})
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@router.get(SITE_PATH.removeprefix("/api"), response_model=SiteAccess)
def site_access(request: Request, services: Services = Depends(get_services)) -> SiteAccess:  # noqa: B008
    """Whether the site asking (its `Origin`) may use the coach: what the widget checks when it can't reach it."""
    origin = request.headers.get("origin")
    allowed = origin is None or same_origin(origin, request.scope) or _listed(origin, services)
    return SiteAccess(allowed=allowed, message=None if allowed else policy.ORIGIN_NOT_ALLOWED)


def _listed(origin: str, services: Services) -> bool:
    try:
        return normalise_origin(origin) in services.settings.cors_origins
    except ValueError:
        return False


#: Registered after every other ``/api`` route: what none of them matched.
fallback = APIRouter(prefix="/api")
#: Every method a request may name (the others are refused by the HTTP parser itself).
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]


@fallback.api_route("/{path:path}", methods=_ANY_METHOD, include_in_schema=False)
def unknown(request: Request, path: str) -> None:
    """Anything else under /api is a JSON 404 (not the chat page), or a 405 if the path takes other methods."""
    allowed = _documented_methods(request.app).get(request.url.path)
    if allowed:
        raise HTTPException(405, headers={"Allow": ", ".join(allowed)})
    raise HTTPException(404)


def _documented_methods(app: Any) -> dict[str, list[str]]:
    """The methods each documented path takes (from the app's OpenAPI schema; HEAD wherever GET is)."""
    found = getattr(app.state, "documented_methods", None)
    if found is None:
        found = {}
        for path, operations in app.openapi().get("paths", {}).items():
            methods = [method.upper() for method in operations if method.upper() in _ANY_METHOD]
            found[path] = sorted({*methods, *(["HEAD"] if "GET" in methods else [])})
        app.state.documented_methods = found
    return found


widget = APIRouter()


@lru_cache(maxsize=1)
def _widget_script() -> str:
    return files("bot.web").joinpath("widget.js").read_text(encoding="utf-8")


@widget.get(WIDGET_PATH, include_in_schema=False)
def widget_js() -> Response:
    """The embeddable chat widget (see README, "Embed in your site")."""
    script = _widget_script()
    headers = {"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"}
    return Response(script, media_type="text/javascript; charset=utf-8", headers=headers)
