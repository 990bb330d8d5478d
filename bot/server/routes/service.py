"""The service's own routes: ``/api/health``, ``/api/metrics``, ``/widget.js``, and a JSON 404 for the rest of /api."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from importlib.resources import files

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from bot.index import store_description
from bot.server import metrics
from bot.server.middleware import WIDGET_PATH
from bot.server.schemas import API_ERRORS, Health
from bot.server.services import Services, get_services

log = logging.getLogger("bot.server.routes.service")

router = APIRouter(prefix="/api", responses=API_ERRORS, tags=["service"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(services: Services = Depends(get_services)) -> Response:  # noqa: B008
    """Ready (200) once the index is loaded and its store answers; 503, saying why, until then."""
    settings = services.settings
    found = Health(status="starting", store=store_description(settings), composer=settings.composer,
                   worker=os.getpid(), page=services.page)  # fmt: skip
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
    return JSONResponse(found.model_dump(), status_code=200 if found.ready else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}})  # fmt: skip
def prometheus_metrics() -> Response:
    """Prometheus metrics: requests by status, stage latencies, index version, cache hit rates (all workers)."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


#: Registered after every other ``/api`` route: what none of them matched.
fallback = APIRouter(prefix="/api")


@fallback.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def unknown(path: str) -> None:
    """Anything else under /api is a JSON 404, not the chat page."""
    raise HTTPException(404)


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
