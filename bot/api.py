"""HTTP shell: one ASGI app serving the JSON API, the chat page (Gradio) and the embeddable widget.

A thin shell over ``Engine.ask`` / ``Engine.stream``: requests are validated and limited here, answered by
the engine, and errors are mapped to JSON once, in the exception handlers. The engine and the feedback
store load in ``lifespan``; ``/api/health`` says ready only after that. ``OriginPolicy`` is the one place
that decides which other sites may call the API or frame the page (``BOT_CORS_ORIGINS``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.feedback import Feedback, FeedbackStore
from bot.ratelimit import RateLimited, RateLimiter
from bot.settings import Settings, get_settings
from bot.types import Answer
from bot.types import Message as ChatMessage

if TYPE_CHECKING:
    from bot.pipeline import Engine

log = logging.getLogger("bot.api")

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


# -- request and response bodies ------------------------------------------------------------------


class ChatRequest(BaseModel):
    """A question and the conversation so far."""

    message: str = Field(description="The question (longer than BOT_MAX_QUESTION_CHARS: an `invalid` answer).",
                         examples=["Where should my feet go on the leg press?"])  # fmt: skip
    history: list[ChatMessage] = Field(
        default_factory=list, description="Earlier turns, oldest first: user questions and the answers' text."
    )


class Health(BaseModel):
    """Whether the engine is loaded and answering."""

    status: str = Field(description="`ready`, or `starting` while the index loads.")
    version: str | None = Field(None, description="Engine version and index build, once ready.")
    passages: int | None = Field(None, description="Passages in the index, once ready.")


class FeedbackReceipt(BaseModel):
    """The stored rating's id."""

    id: int


class ApiError(BaseModel):
    """Every error response."""

    error: str = Field(description="Machine-readable code, e.g. `rate_limited`.")
    message: str = Field(description="What went wrong, in plain words.")


class NotReady(Exception):
    """The engine is still loading (or the server is stopping)."""


# -- what lifespan loads --------------------------------------------------------------------------


class Services:
    """The loaded engine and feedback store, the limits, and the slots for answering at once."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.store: FeedbackStore | None = None
        self.limiter = RateLimiter(settings.rate_limit, daily_cap_per_origin=settings.daily_cap_per_origin)
        self.slots: anyio.CapacityLimiter | None = None

    @property
    def ready(self) -> bool:
        """Whether questions can be answered now."""
        return self.engine is not None and self.store is not None

    def loaded(self) -> tuple[Engine, FeedbackStore]:
        """The engine and store, or ``NotReady``."""
        if self.engine is None or self.store is None:
            raise NotReady
        return self.engine, self.store


def services(request: Request) -> Services:
    """The app's services (a FastAPI dependency)."""
    found: Services = request.app.state.bot
    return found


def loaded(bot: Services = Depends(services)) -> tuple[Engine, FeedbackStore]:  # noqa: B008 - FastAPI idiom
    """The engine and feedback store, or a 503 before they are loaded (checked before any response starts)."""
    return bot.loaded()


def client_key(request: Request) -> str:
    """Who is asking, for rate limits: the client address (behind a proxy, configure its forwarded headers)."""
    return request.client.host if request.client else "unknown"


def rate_limit(request: Request, bot: Services = Depends(services)) -> None:  # noqa: B008 - FastAPI idiom
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


# -- errors, mapped once --------------------------------------------------------------------------


def _json_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ApiError(error=code, message=message).model_dump(), status_code=status, headers=headers)


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


async def _not_ready(request: Request, error: Exception) -> Response:
    return _json_error(503, "not_ready", "The coach is still starting up. Please try again in a few seconds.",
                       {"Retry-After": "5"})  # fmt: skip


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
    """Ready once the index is loaded and questions can be answered (503 until then)."""
    if not bot.ready:
        return JSONResponse(Health(status="starting").model_dump(), status_code=503)
    assert bot.engine is not None
    return JSONResponse(
        Health(status="ready", version=bot.engine.version, passages=len(bot.engine.index.chunks)).model_dump()
    )


@router.post("/chat", response_model=Answer, dependencies=[Depends(rate_limit)], tags=["chat"])
async def chat(body: ChatRequest, bot: Services = Depends(services), ready=Depends(loaded)) -> Response:  # noqa: B008
    """Answer a question in the context of the conversation: the `ask` JSON contract."""
    engine, _store = ready
    answer = await anyio.to_thread.run_sync(engine.ask, body.message, body.history, limiter=bot.slots)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("/chat/stream", response_class=EventSourceResponse, dependencies=[Depends(rate_limit)], tags=["chat"])
def chat_stream(body: ChatRequest, ready=Depends(loaded)) -> Iterator[ServerSentEvent]:  # noqa: B008
    """The same answer as server-sent events.

    `delta` events (`{"text": …}`) carry pieces of the reply as they are ready, then one `answer` event
    carries the full `Answer`. A failure mid-way is an `error` event.
    """
    engine, _store = ready
    try:
        for piece in engine.stream(body.message, body.history):
            if isinstance(piece, Answer):
                yield ServerSentEvent(event="answer", raw_data=piece.model_dump_json())
            else:
                yield ServerSentEvent(event="delta", data={"text": piece})
    except Exception:
        log.exception("streaming an answer failed")
        yield ServerSentEvent(event="error", data=ApiError(error="internal_error",
                              message="Something went wrong on our side. Please try again.").model_dump())  # fmt: skip


@router.post("/feedback", response_model=FeedbackReceipt, status_code=201, dependencies=[Depends(rate_limit)],
             tags=["feedback"])  # fmt: skip
def feedback(body: Feedback, ready=Depends(loaded)) -> FeedbackReceipt:  # noqa: B008
    """Rate an answer (thumbs up or down, optional comment); it is stored before this returns."""
    engine, store = ready
    return FeedbackReceipt(id=store.add(body, engine_version=engine.version, channel="api"))


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def unknown(path: str) -> None:
    """Anything else under /api is a JSON 404, not the chat page."""
    raise StarletteHTTPException(404)


def widget_js() -> Response:
    """The embeddable chat widget (see README, "Embed in your site")."""
    script = files("bot.web").joinpath("widget.js").read_text(encoding="utf-8")
    headers = {"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"}
    return Response(script, media_type="text/javascript; charset=utf-8", headers=headers)


# -- the app --------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, *, engine: Engine | None = None, page: bool = True) -> FastAPI:
    """The whole web app. ``engine``: an already loaded engine (tests); otherwise ``lifespan`` loads one.

    ``page=False`` leaves out the Gradio chat page (and the seconds it takes to import).
    """
    from fastapi_offline import FastAPIOffline

    settings = settings or get_settings()
    bot = Services(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        bot.slots = anyio.CapacityLimiter(settings.worker_threads)
        if bot.engine is None:
            from bot.pipeline import Engine

            bot.engine = await anyio.to_thread.run_sync(Engine.load, settings)
        bot.store = await anyio.to_thread.run_sync(
            lambda: FeedbackStore.open(settings.data_dir, retention_days=settings.feedback_retention_days)
        )
        try:
            yield {}
        finally:
            store, bot.store = bot.store, None
            store.close()

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
            Exception: _unexpected,
        },
    )
    app.state.bot = bot
    app.add_middleware(OriginPolicy, allowed_origins=settings.cors_origins, max_body_bytes=settings.max_body_bytes)
    app.include_router(router)
    app.add_api_route(WIDGET_PATH, widget_js, methods=["GET"], include_in_schema=False)
    if page:
        from bot.ui import mount_page

        mount_page(app, bot)
    return app


def _version() -> str:
    from bot import __version__

    return __version__
