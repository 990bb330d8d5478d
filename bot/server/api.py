"""HTTP shell: one ASGI app serving the JSON API, the chat page (Gradio) and the embeddable widget.

A thin shell over ``Engine.ask`` / ``Engine.stream``: requests are validated and limited here, answered by
the engine, and errors are mapped to JSON once, in the exception handlers. The engine and the feedback
store load in ``lifespan``; ``/api/health`` says ready only after that. ``OriginPolicy`` is the one place
that decides which other sites may call the API or frame the page (``BOT_CORS_ORIGINS``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.contract import Answer
from bot.contract import Message as ChatMessage
from bot.feedback import Feedback, FeedbackStore
from bot.observability import new_request_id, request_fields, start_request
from bot.server import metrics
from bot.server.ratelimit import RateLimited, RateLimiter
from bot.settings import Settings, get_settings

if TYPE_CHECKING:
    from bot.engine.engine import Engine

log = logging.getLogger("bot.server.api")
#: One line per request (method, path, status, duration, answer status and stage timings) at INFO.
access_log = logging.getLogger("bot.access")

WIDGET_PATH = "/widget.js"
_ERROR_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "not_ready",
}
#: How long a store check (a Chroma server heartbeat) is trusted before /api/health asks again.
_STORE_CHECK_SECONDS = 1.0


# -- request and response bodies ------------------------------------------------------------------


class ChatRequest(BaseModel):
    """A question and the conversation so far."""

    message: str = Field(description="The question (longer than BOT_MAX_QUESTION_CHARS: an `invalid` answer).",
                         examples=["Where should my feet go on the leg press?"])  # fmt: skip
    history: list[ChatMessage] = Field(
        default_factory=list, description="Earlier turns, oldest first: user questions and the answers' text."
    )


class Health(BaseModel):
    """Whether this worker can answer, and what it answers from."""

    status: str = Field(
        description="`ready`; `starting` while the index loads; `store_unavailable` while the Chroma server "
        "cannot be reached."
    )
    ready: bool = Field(False, description="Whether questions can be answered now (the HTTP status is 200 iff so).")
    version: str | None = Field(None, description="Engine version and index build, once loaded.")
    index_version: int | None = Field(None, description="The index version answered from, once loaded.")
    passages: int | None = Field(None, description="Passages in the index, once loaded.")
    store: str = Field(description="Where the vectors live: the embedded store or the Chroma server's URL.")
    composer: str = Field(description="How answers are written (`extractive`, or the chat model).")
    worker: int = Field(description="Process id of the worker that answered (several may serve one port).")
    page: str = Field(
        "off",
        description="The chat page: `starting` while it is built (the API answers already), `ready`, `failed`, "
        "or `off` when this app serves no page.",
    )


class FeedbackReceipt(BaseModel):
    """The stored rating's id."""

    id: int


class ApiError(BaseModel):
    """Every error response."""

    error: str = Field(description="Machine-readable code, e.g. `rate_limited`.")
    message: str = Field(description="What went wrong, in plain words.")
    disclaimer: str | None = Field(None, description="The medical disclaimer, on replies that stand for an answer.")


class NotReady(Exception):
    """The engine is still loading (or the server is stopping)."""


class StoreUnavailable(Exception):
    """The Chroma server holding the vectors cannot be reached."""


class FeedbackUnavailable(Exception):
    """A rating could not be stored."""


# -- what lifespan loads --------------------------------------------------------------------------


class Services:
    """The loaded engine and feedback store, the limits, and the slots for answering at once."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.store: FeedbackStore | None = None
        self.limiter = RateLimiter(settings.rate_limit, daily_cap_per_origin=settings.daily_cap_per_origin)
        self.slots: anyio.CapacityLimiter | None = None
        self._store_ok = True
        self._store_checked_until = 0.0
        self.page = "off"

    @property
    def ready(self) -> bool:
        """Whether the engine and the feedback store are loaded."""
        return self.engine is not None and self.store is not None

    def store_reachable(self) -> bool:
        """Whether the vector store answers (a Chroma server heartbeat, checked at most once a second)."""
        from bot.index import store_reachable

        now = time.monotonic()
        if now >= self._store_checked_until:
            self._store_ok = store_reachable(self.settings)
            self._store_checked_until = now + _STORE_CHECK_SECONDS
        return self._store_ok

    def store_failed(self) -> None:
        """A request just failed to reach the store: report not ready until the next check succeeds."""
        self._store_ok = False
        self._store_checked_until = time.monotonic() + _STORE_CHECK_SECONDS

    def is_store_failure(self, error: BaseException) -> bool:
        """Whether ``error`` came from an unreachable store (and if so, remember that)."""
        from bot.index import store_unreachable

        if store_unreachable(self.settings, error):
            self.store_failed()
            metrics.FAILURES.labels("store_unavailable").inc()
            return True
        return False

    def answered(self, answer: Answer) -> None:
        """Record an answer in the metrics and in the request's log line."""
        metrics.observe_answer(answer)
        if self.engine is not None:
            metrics.CACHES.sync(self.engine.caches)
            metrics.set_index_version(self.engine.index.manifest.version)
        fields = request_fields()
        if fields is not None:
            fields.update(answer_status=answer.status.value, reason=answer.reason, timings_ms=answer.timings_ms)

    async def load_when_store_returns(self, embeddings: Any) -> None:
        """Load the engine once the Chroma server answers again (it was unreachable at start-up)."""
        from bot.engine.engine import Engine

        settings = self.settings
        delay = 1.0
        while self.engine is None:
            await anyio.sleep(delay)
            delay = min(delay * 2, 10.0)
            if not await anyio.to_thread.run_sync(self.store_reachable):
                continue
            try:
                self.engine = await anyio.to_thread.run_sync(lambda: Engine.load(settings, embeddings=embeddings))
            except Exception as error:
                log.warning("Still cannot open the index (%s); retrying in %.0f s.", error, delay)
                continue
            metrics.set_index_version(self.engine.index.manifest.version)
            log.warning("The Chroma server at %s is back; answering from index v%d.", settings.chroma_url,
                        self.engine.index.manifest.version)  # fmt: skip

    def loaded(self) -> tuple[Engine, FeedbackStore]:
        """The engine and store, or ``StoreUnavailable`` / ``NotReady`` (whichever says why)."""
        if self.engine is None or self.store is None:
            if self.settings.chroma_url and not self._store_ok:
                raise StoreUnavailable
            raise NotReady
        return self.engine, self.store


# The dependencies are ``async`` because none of them blocks: FastAPI runs a plain ``def`` dependency in a
# worker thread, three thread hops per question for nothing.


async def services(request: Request) -> Services:
    """The app's services (a FastAPI dependency)."""
    found: Services = request.app.state.bot
    return found


async def loaded(bot: Services = Depends(services)) -> tuple[Engine, FeedbackStore]:  # noqa: B008 - FastAPI idiom
    """The engine and feedback store, or a 503 before they are loaded (checked before any response starts)."""
    return bot.loaded()


def client_key(request: Request) -> str:
    """Who is asking, for rate limits: the client address (behind a proxy, configure its forwarded headers)."""
    return request.client.host if request.client else "unknown"


async def rate_limit(request: Request, bot: Services = Depends(services)) -> None:  # noqa: B008 - FastAPI idiom
    """Count the request against the client's limits and its embedding site's daily cap."""
    bot.limiter.hit(client_key(request), request.scope.get("state", {}).get("embed_origin"))


# -- the origin policy ----------------------------------------------------------------------------


def _same_origin(origin: str, host: str | None) -> bool:
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


class OriginPolicy:
    """CORS allow-list, framing policy and API body limit, for the whole app (Gradio's routes included).

    A request whose ``Origin`` is another site not on the allow-list is refused (403) before it reaches any
    route, so nothing runs on its behalf; listed sites get CORS headers. Headers set further in (Gradio
    echoes any origin) are replaced. Every response carries ``Content-Security-Policy: frame-ancestors``
    with the same list, so only those sites can put the page in an iframe.
    """

    def __init__(self, app: ASGIApp, *, allowed_origins: Sequence[str], max_body_bytes: int) -> None:
        self.app = app
        self.allowed = frozenset(allowed_origins)
        self.max_body_bytes = max_body_bytes
        self.csp = "frame-ancestors " + " ".join(["'self'", *allowed_origins])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, or pass on with the policy's headers."""
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        foreign = origin is not None and not _same_origin(origin, headers.get("host"))
        if foreign and origin not in self.allowed and scope["path"] != WIDGET_PATH:
            log.info("refused a request from %s to %s", origin, scope["path"])
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            refused = _json_error(403, "origin_not_allowed", "This site is not allowed to use the coach: its address "
                                  "must be in the coach server's BOT_CORS_ORIGINS list.")  # fmt: skip
            await self._send_with_policy(refused, scope, receive, send, {})
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        cors = {"Access-Control-Allow-Origin": origin} if foreign and origin in self.allowed else {}
        if cors:
            scope.setdefault("state", {})["embed_origin"] = origin
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                preflight = {
                    **cors,
                    "Access-Control-Allow-Methods": "GET, POST",
                    "Access-Control-Allow-Headers": "Content-Type",
                    "Access-Control-Max-Age": "600",
                }
                await self._send_with_policy(Response(status_code=204), scope, receive, send, preflight)
                return
        if scope["path"].startswith("/api/"):
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                too_big = _json_error(413, "request_too_large", f"Requests are limited to {self.max_body_bytes} bytes.")
                await self._send_with_policy(too_big, scope, receive, send, cors)
                return
            receive = self._limited(receive)
        await self._send_with_policy(self.app, scope, receive, send, cors)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body_bytes:
                raise StarletteHTTPException(413, f"Requests are limited to {self.max_body_bytes} bytes.")
            return message

        return limited

    async def _send_with_policy(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, cors: dict) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name in [n for n in out if n.startswith("access-control-")]:
                    del out[name]
                out.update(cors)
                out.append("Vary", "Origin")
                out["Content-Security-Policy"] = self.csp
                out["X-Content-Type-Options"] = "nosniff"
                out["Referrer-Policy"] = "strict-origin-when-cross-origin"
            await send(message)

        await app(scope, receive, send_with_headers)


# -- request ids, logs and metrics ---------------------------------------------------------------


class RequestContext:
    """Give every request an id (the client's ``X-Request-ID`` if sane), then count, time and log it.

    The id is returned as ``X-Request-ID`` and is on every log record written while the request is
    handled; the request's own line (``bot.access``, INFO) adds status, duration and, for answers, the
    answer status and stage timings.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request inside its context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id(Headers(scope=scope).get("x-request-id"))
        fields = start_request(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            metrics.observe_request(scope["path"], status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                fields.update(method=scope["method"], path=scope["path"], status=status,
                              duration_ms=round(seconds * 1000, 3))  # fmt: skip
                access_log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, seconds * 1000,
                                extra={k: v for k, v in fields.items() if k != "request_id"})  # fmt: skip


# -- errors, mapped once --------------------------------------------------------------------------


def _json_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None, *, disclaimer: bool = False
) -> JSONResponse:
    body = ApiError(error=code, message=message, disclaimer=_disclaimer() if disclaimer else None)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _disclaimer() -> str:
    from bot.policy import DISCLAIMER

    return DISCLAIMER


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    message = error.detail if isinstance(error.detail, str) and error.status_code != 500 else "Request failed."
    if error.status_code == 404:
        message = f"There is no {request.url.path} here. See /docs for the API."
    elif error.status_code == 405:
        message = f"{request.method} is not supported on {request.url.path}. See /docs for the API."
    return _json_error(error.status_code, _ERROR_CODES.get(error.status_code, "error"), message, error.headers)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    example = '{"message": "…", "history": [{"role": "user", "content": "…"}]}'
    message = f"The request isn't in the expected form — {'; '.join(problems)}. Send JSON like {example}."
    return _json_error(422, "invalid_request", message)


async def _rate_limited(request: Request, error: Exception) -> Response:
    assert isinstance(error, RateLimited)
    return _json_error(429, "rate_limited", error.message, {"Retry-After": str(error.retry_after)})


NOT_READY_MESSAGE = "The coach is still starting up. Please try again in a few seconds."


async def _not_ready(request: Request, error: Exception) -> Response:
    return _json_error(503, "not_ready", NOT_READY_MESSAGE, {"Retry-After": "5"}, disclaimer=True)


_STORE_MESSAGE = (
    "Sorry — the coach can't reach its articles right now, so it can't answer safely. "
    "Please try again in a minute. If your knee pain is severe or worrying, don't wait: see a doctor or "
    "physical therapist."
)


async def _store_unavailable(request: Request, error: Exception) -> Response:
    log.warning("the vector store is unreachable (%s)", error.__cause__ or "still down")
    return _json_error(503, "store_unavailable", _STORE_MESSAGE, {"Retry-After": "10"}, disclaimer=True)


async def _feedback_unavailable(request: Request, error: Exception) -> Response:
    return _json_error(503, "feedback_unavailable", "Sorry — your rating could not be saved just now. "
                       "The answer itself is unaffected; please try rating again later.",
                       {"Retry-After": "30"})  # fmt: skip


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _json_error(500, "internal_error", "Something went wrong on our side. Please try again.")


# -- routes ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/api", responses={
    422: {"model": ApiError, "description": "The body isn't in the expected form."},
    429: {"model": ApiError, "description": "Too many requests from this client, or this site's daily cap."},
    503: {"model": ApiError, "description": "The engine is still loading."},
})  # fmt: skip


@router.get("/health", response_model=Health, responses={503: {"model": Health}}, tags=["service"])
def health(bot: Services = Depends(services)) -> Response:  # noqa: B008
    """Ready (200) once the index is loaded and its store answers; 503, saying why, until then."""
    from bot.index import store_description

    settings = bot.settings
    found = Health(status="starting", store=store_description(settings), composer=settings.composer,
                   worker=os.getpid(), page=bot.page)  # fmt: skip
    engine = bot.engine
    if engine is not None:
        try:
            engine.refresh()  # report the version a question would be answered from
        except Exception as error:
            if not bot.is_store_failure(error):
                log.warning("checking for a newer index failed (%s)", error)
        manifest = engine.index.manifest
        found.version, found.index_version, found.passages = engine.version, manifest.version, manifest.chunk_count
        found.composer = engine.composer  # "extractive" when the configured chat model could not be loaded
        metrics.set_index_version(manifest.version)
    if bot.ready:
        found.ready = bot.store_reachable()
        found.status = "ready" if found.ready else "store_unavailable"
    elif engine is None and not bot.store_reachable():
        found.status = "store_unavailable"
    metrics.set_ready(found.ready)
    return JSONResponse(found.model_dump(), status_code=200 if found.ready else 503)


@router.get("/metrics", response_class=Response, tags=["service"],
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}})  # fmt: skip
def prometheus_metrics() -> Response:
    """Prometheus metrics: requests by status, stage latencies, index version, cache hit rates (all workers)."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@router.post("/chat", response_model=Answer, dependencies=[Depends(rate_limit)], tags=["chat"])
async def chat(body: ChatRequest, bot: Services = Depends(services), ready=Depends(loaded)) -> Response:  # noqa: B008
    """Answer a question in the context of the conversation: the `ask` JSON contract."""
    engine, _store = ready
    try:
        answer = await anyio.to_thread.run_sync(engine.ask, body.message, body.history, limiter=bot.slots)
    except Exception as error:
        if bot.is_store_failure(error):
            raise StoreUnavailable from error
        raise
    bot.answered(answer)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("/chat/stream", response_class=EventSourceResponse, dependencies=[Depends(rate_limit)], tags=["chat"])
def chat_stream(
    body: ChatRequest,
    bot: Services = Depends(services),  # noqa: B008
    ready=Depends(loaded),  # noqa: B008
) -> Iterator[ServerSentEvent]:
    """The same answer as server-sent events.

    `delta` events (`{"text": …}`) carry pieces of the reply as they are ready, then one `answer` event
    carries the full `Answer`. A failure mid-way is an `error` event (the body of the matching error
    response: `store_unavailable` with the disclaimer when the articles can't be reached).
    """
    engine, _store = ready
    try:
        for piece in engine.stream(body.message, body.history):
            if isinstance(piece, Answer):
                bot.answered(piece)
                yield ServerSentEvent(event="answer", raw_data=piece.model_dump_json())
            else:
                yield ServerSentEvent(event="delta", data={"text": piece})
    except Exception as error:
        if bot.is_store_failure(error):
            log.warning("the vector store is unreachable (%s)", error)
            failure = ApiError(error="store_unavailable", message=_STORE_MESSAGE, disclaimer=_disclaimer())
        else:
            log.exception("streaming an answer failed")
            failure = ApiError(error="internal_error", message="Something went wrong on our side. Please try again.")
        yield ServerSentEvent(event="error", data=failure.model_dump(exclude_none=True))


@router.post("/feedback", response_model=FeedbackReceipt, status_code=201, dependencies=[Depends(rate_limit)],
             tags=["feedback"])  # fmt: skip
def feedback(body: Feedback, ready=Depends(loaded)) -> FeedbackReceipt:  # noqa: B008
    """Rate an answer (thumbs up or down, optional comment); it is stored before this returns."""
    engine, store = ready
    try:
        return FeedbackReceipt(id=store.add(body, engine_version=engine.version, channel="api"))
    except (sqlite3.Error, OSError) as error:
        log.error("storing a rating failed (%s: %s)", error.__class__.__name__, error, exc_info=True)
        metrics.FAILURES.labels("feedback_write").inc()
        raise FeedbackUnavailable from error


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def unknown(path: str) -> None:
    """Anything else under /api is a JSON 404, not the chat page."""
    raise StarletteHTTPException(404)


@lru_cache(maxsize=1)
def _widget_script() -> str:
    return files("bot.web").joinpath("widget.js").read_text(encoding="utf-8")


def widget_js() -> Response:
    """The embeddable chat widget (see README, "Embed in your site")."""
    script = _widget_script()
    headers = {"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"}
    return Response(script, media_type="text/javascript; charset=utf-8", headers=headers)


# -- the app --------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, *, engine: Engine | None = None, page: bool = True) -> FastAPI:
    """The whole web app. ``engine``: an already loaded engine (tests); otherwise ``lifespan`` loads one.

    The chat page is built once the API is ready (see ``_serve_page``); ``page=False`` leaves it out.
    """
    from fastapi_offline import FastAPIOffline

    settings = settings or get_settings()
    bot = Services(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        bot.slots = anyio.CapacityLimiter(settings.worker_threads)
        retry: asyncio.Task[None] | None = None
        if bot.engine is None:
            from bot.engine.engine import Engine
            from bot.index import store_unreachable
            from bot.models.embedding import load_embeddings

            embeddings = await anyio.to_thread.run_sync(
                lambda: load_embeddings(settings.embedding_model, threads=settings.torch_threads)
            )
            try:
                bot.engine = await anyio.to_thread.run_sync(lambda: Engine.load(settings, embeddings=embeddings))
            except Exception as error:
                if not store_unreachable(settings, error):
                    raise
                # Serve 503s (health says why) and load as soon as the store is back, rather than exit.
                log.warning("The Chroma server at %s is unreachable; answering 503 until it is back.",
                            settings.chroma_url)  # fmt: skip
                bot.store_failed()
                retry = asyncio.get_running_loop().create_task(bot.load_when_store_returns(embeddings))
        if bot.engine is not None:
            metrics.set_index_version(bot.engine.index.manifest.version)
        bot.store = await anyio.to_thread.run_sync(
            lambda: FeedbackStore.open(settings.data_dir, retention_days=settings.feedback_retention_days)
        )
        metrics.set_ready(bot.ready)
        stopping = anyio.Event()
        page_task = asyncio.get_running_loop().create_task(_serve_page(app, bot, stopping)) if page else None
        try:
            yield {}
        finally:
            stopping.set()
            if page_task is not None:
                await page_task
            if retry is not None:
                retry.cancel()
            store, bot.store = bot.store, None
            store.close()
            metrics.set_ready(False)
            metrics.worker_stopped()

    app = FastAPIOffline(
        title="Knee-pain coach API",
        version=_version(),
        description="Grounded answers about knee pain after the leg press, citing the articles they quote. "
        "Every answer ends with a medical disclaimer. The chat page is at `/`, the embeddable widget at "
        f"`{WIDGET_PATH}`.",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
        exception_handlers={
            StarletteHTTPException: _http_error,
            RequestValidationError: _validation_error,
            RateLimited: _rate_limited,
            NotReady: _not_ready,
            StoreUnavailable: _store_unavailable,
            FeedbackUnavailable: _feedback_unavailable,
            Exception: _unexpected,
        },
    )
    app.state.bot = bot
    app.add_middleware(OriginPolicy, allowed_origins=settings.cors_origins, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)  # outermost: refusals get an id and are counted too
    app.include_router(router)
    app.add_api_route(WIDGET_PATH, widget_js, methods=["GET"], include_in_schema=False)
    if page:
        bot.page = "starting"
        app.router.routes.append(Route("/", _page_starting, methods=["GET", "HEAD"], name=_STARTING_ROUTE))
    return app


_STARTING_ROUTE = "chat-page-starting"
_PLACEHOLDER_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{refresh}
<title>Knee-pain coach</title></head><body style="font-family: system-ui, sans-serif; margin: 2rem">
<p role="status">{message}</p></body></html>"""


async def _page_starting(request: Request) -> Response:
    """``/`` for the seconds between the API being ready and the chat page being built (or failing to be)."""
    if request.app.state.bot.page == "failed":
        message, refresh = "The chat page is unavailable right now. Please try again later.", ""
    else:
        message = "The knee-pain coach is starting up. This page reloads by itself in a moment."
        refresh = '<meta http-equiv="refresh" content="1">'
    headers = {"Retry-After": "1", "Cache-Control": "no-store"}
    html = _PLACEHOLDER_HTML.format(refresh=refresh, message=message)
    return Response(html, status_code=503, media_type="text/html; charset=utf-8", headers=headers)


async def _serve_page(app: FastAPI, bot: Services, stopping: anyio.Event) -> None:
    """Build the Gradio chat page, put it at ``/`` in place of the "starting" page, and run it until shutdown.

    Importing Gradio takes seconds, more than loading the engine; doing it after start-up lets ``/api/health``
    say ready (and the API and widget answer) that much sooner. The import runs in a worker thread so the
    event loop keeps serving meanwhile.
    """

    def build() -> Any:
        from bot.server.page import mount_page

        return mount_page(app, bot)

    try:
        page = await anyio.to_thread.run_sync(build)
        async with page.router.lifespan_context(page):  # what Gradio's mount would run at start-up
            blocks = page.get_blocks()
            blocks.run_startup_events()
            await blocks.run_extra_startup_events()
            app.router.routes[:] = [r for r in app.router.routes if getattr(r, "name", None) != _STARTING_ROUTE]
            bot.page = "ready"
            log.info("The chat page is ready.")
            await stopping.wait()
    except Exception:
        bot.page = "failed"
        log.exception("The chat page could not be built; the API keeps answering.")


def worker_app() -> FastAPI:
    """The app as each of several worker processes builds it (``uvicorn --factory``; see ``app.py``)."""
    from bot.cli.main import configure_logging

    configure_logging()
    return create_app()


def _version() -> str:
    from bot.version import __version__

    return __version__
