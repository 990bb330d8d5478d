"""The web app: the JSON API, the embeddable widget and the chat page (Gradio), as one ASGI app.

``create_app`` puts the parts together; ``lifespan`` loads the engine and the feedback store (``/api/health``
says ready only after that), keeps retrying while the Chroma server is unreachable at start-up, then builds
the chat page in the background. ``worker_app`` is what each of several worker processes serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from bot.engine import Engine
from bot.feedback import FeedbackStore
from bot.index import import_client, store_unreachable
from bot.models.embedding import embeddings_for
from bot.observability import configure_logging
from bot.server import errors, metrics
from bot.server.forwarded import Forwarded
from bot.server.gate import Gate
from bot.server.middleware import WIDGET_PATH, BodyLimit, OriginPolicy, RequestContext
from bot.server.placeholder import PageSlot
from bot.server.routes import chat, feedback, openai, service
from bot.server.services import AnswerEngine, Services
from bot.server.signing import AnswerSigner
from bot.settings import Settings, get_settings
from bot.version import __version__

log = logging.getLogger("bot.server.app")


def create_app(settings: Settings | None = None, *, engine: AnswerEngine | None = None, page: bool = True) -> FastAPI:
    """The whole web app. ``engine``: an already loaded engine (tests); otherwise ``lifespan`` loads one.

    The chat page is built once the API is ready (see ``_serve_page``); ``page=False`` leaves it out.
    """
    settings = settings or get_settings()
    services = Services(settings, engine)
    if page:
        services.page_slot = PageSlot()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        services.slots = anyio.CapacityLimiter(settings.worker_threads)
        retry = await _load_engine(services) if services.engine is None else None
        if services.engine is not None:
            metrics.set_index_version(services.engine.index.manifest.version)
        services.signer = await anyio.to_thread.run_sync(AnswerSigner.load, settings)
        services.store = await anyio.to_thread.run_sync(lambda: FeedbackStore.for_settings(settings, strict=False))
        metrics.set_ready(services.ready)
        stopping = anyio.Event()
        slot = services.page_slot
        page_task = asyncio.get_running_loop().create_task(_serve_page(services, slot, stopping)) if slot else None
        try:
            yield {}
        finally:
            stopping.set()
            if page_task is not None:
                await page_task
            if retry is not None:
                retry.cancel()
            store, services.store = services.store, None
            store.close()
            metrics.set_ready(False)
            metrics.worker_stopped()

    app = FastAPIOffline(
        title="Knee-pain coach API",
        version=__version__,
        description="Grounded answers about knee pain after the leg press, citing the articles they quote. "
        "Every answer ends with a medical disclaimer. The chat page is at `/`, the embeddable widget at "
        f"`{WIDGET_PATH}`.",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
        exception_handlers=errors.HANDLERS,
    )
    app.state.services = services
    # -- the layers every request passes, Gradio's included (outermost last) --------------------------
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(Gate, services=services)  # counts what asks or rates, before any route reads it
    app.add_middleware(OriginPolicy, allowed_origins=settings.cors_origins)
    app.add_middleware(Forwarded, trusted_proxies=settings.trusted_proxies,
                       allowed_hosts=settings.resolved_allowed_hosts)  # fmt: skip
    app.add_middleware(RequestContext)  # outermost: refusals get an id and are counted too
    for router in (service.router, chat.router, feedback.router, service.fallback, service.widget):
        app.include_router(router)
    app.include_router(openai.router)  # the OpenAI-compatible API (/v1), then its JSON 404s
    app.include_router(openai.fallback)
    if services.page_slot is not None:
        app.mount("/", services.page_slot)  # after every other route, which keep precedence
    return app


async def _load_engine(services: Services) -> asyncio.Task[None] | None:
    """Load the engine; if the Chroma server is unreachable, the task that loads it once it is back."""
    settings = services.settings
    # The model's session is made mostly outside the GIL: chromadb's import (most of opening the index) goes
    # on beside it, a third of a second sooner ready.
    async with anyio.create_task_group() as group:
        group.start_soon(anyio.to_thread.run_sync, import_client)
        embeddings = await anyio.to_thread.run_sync(lambda: embeddings_for(settings))

    def load() -> Engine:
        return Engine.load(settings, embeddings=embeddings)

    try:
        services.engine = await anyio.to_thread.run_sync(load)
    except Exception as error:
        if not store_unreachable(settings, error):
            raise
        # Serve 503s (health says why) and load as soon as the store is back, rather than exit.
        log.warning("The Chroma server at %s is unreachable; answering 503 until it is back.", settings.chroma_url)
        services.store_failed()
        return asyncio.get_running_loop().create_task(services.load_when_store_returns(load))
    return None


def _import_page() -> ModuleType:
    # Lazy on purpose: importing Gradio takes seconds, longer than loading the engine. Imported after
    # start-up, in a worker thread, it lets /api/health say ready (and the API and widget answer) that
    # much sooner while the event loop keeps serving.
    from bot.server import page

    return page


async def _serve_page(services: Services, slot: PageSlot, stopping: anyio.Event) -> None:
    """Build the chat page and serve it at ``/`` in place of the "starting up" page until shutdown."""
    try:
        page = await anyio.to_thread.run_sync(_import_page)
        await page.run(services, slot, stopping)
    except Exception:
        slot.failed()
        log.exception("The chat page could not be built; the API keeps answering.")


def worker_app() -> FastAPI:
    """The app as each of several worker processes builds it (``uvicorn --factory``; see ``app.py``)."""
    settings = get_settings()
    configure_logging(settings.log_level, as_json=settings.log_json)
    return create_app(settings)
