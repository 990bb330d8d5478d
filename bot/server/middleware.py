"""The ASGI layers around every request, the chat page's included, outermost first.

``RequestContext`` gives each request an id and counts, times and logs it; ``bot.server.forwarded`` resolves
who is asking and by which name; ``OriginPolicy`` is the one place that decides which other sites may call the
API or frame the page (``BOT_CORS_ORIGINS``) and sets the security headers; ``bot.server.gate`` counts what
asks or rates; ``BodyLimit`` refuses bodies over ``BOT_MAX_BODY_BYTES``, on every route.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import policy
from bot.observability import new_request_id, start_request
from bot.server import metrics
from bot.server.errors import json_error
from bot.settings import normalise_origin

log = logging.getLogger("bot.server.middleware")
#: One line per request (method, path, status, duration, answer status and stage timings) at INFO.
access_log = logging.getLogger("bot.access")

#: The widget script, which any site may load (it calls the API, which the allow-list still guards).
WIDGET_PATH = "/widget.js"
#: Request headers a listed site may send: ``Authorization`` carries the OpenAI-compatible API's key.
_ALLOWED_HEADERS = "Authorization, Content-Type"
#: Whether the asking site may use the bot: any site may ask (the widget tells "not on this site" from "down").
SITE_PATH = "/api/site"
#: What any site may reach.
OPEN_PATHS = frozenset({WIDGET_PATH, SITE_PATH})
#: Where ``OriginPolicy`` notes the allowed other site a request came from (``scope["state"]``).
_EMBED_ORIGIN = "embed_origin"


def embedding_site(scope: Scope) -> str | None:
    """The allowed other site the request came from (its pages embed the widget), for that site's daily cap."""
    site: str | None = scope.get("state", {}).get(_EMBED_ORIGIN)
    return site


def own_origin(scope: Scope) -> str | None:
    """The origin the request was made to: its scheme, host and port (as ``Forwarded`` resolved them)."""
    host = Headers(scope=scope).get("host")
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    if not host:
        return None
    try:
        return normalise_origin(f"{scheme}://{host}")
    except ValueError:
        return None


def same_origin(origin: str, scope: Scope) -> bool:
    """Whether ``origin`` is the request's own: same scheme, host and port (default ports dropped)."""
    try:
        theirs = normalise_origin(origin)
    except ValueError:
        return False
    return theirs == own_origin(scope)


def _only_the_scheme_differs(origin: str, scope: Scope) -> bool:
    own = own_origin(scope)
    return own is not None and origin.split("://", 1)[-1] == own.split("://", 1)[-1]


class OriginPolicy:
    """CORS allow-list, framing policy and security headers, for the whole app (Gradio's routes included).

    A request whose ``Origin`` is another site not on the allow-list is refused (403) before it reaches any
    route, so nothing runs on its behalf; listed sites get CORS headers. Headers set further in (Gradio
    echoes any origin) are replaced. Every response carries ``Content-Security-Policy: frame-ancestors``
    with the same list, so only those sites can put the page in an iframe.
    """

    def __init__(self, app: ASGIApp, *, allowed_origins: Sequence[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed_origins)
        self.csp = "frame-ancestors " + " ".join(["'self'", *allowed_origins])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, or pass on with the policy's headers."""
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        foreign = origin is not None and not same_origin(origin, scope)
        listed = foreign and self._listed(origin)
        if foreign and not listed and scope["path"] not in OPEN_PATHS:
            log.info("refused a request from %s to %s", origin, scope["path"])
            if origin and _only_the_scheme_differs(origin, scope):
                log.warning("refused %s: the page was loaded over another scheme than this server sees — behind a "
                            "TLS proxy, list it in BOT_TRUSTED_PROXIES (docs/operations.md)", origin)  # fmt: skip
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            refused = json_error(403, "origin_not_allowed", policy.ORIGIN_NOT_ALLOWED, path=scope["path"])
            await self._send_with_policy(refused, scope, receive, send, {})
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        cors = {"Access-Control-Allow-Origin": origin} if listed and origin else {}
        if foreign and origin and scope["path"] == SITE_PATH:  # any site may ask whether it is allowed
            await self._send_with_policy(self.app, scope, receive, send, {"Access-Control-Allow-Origin": origin})
            return
        if cors:
            scope.setdefault("state", {})[_EMBED_ORIGIN] = origin
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                preflight = {
                    **cors,
                    "Access-Control-Allow-Methods": "GET, POST",
                    "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
                    "Access-Control-Max-Age": "600",
                }
                await self._send_with_policy(Response(status_code=204), scope, receive, send, preflight)
                return
        await self._send_with_policy(self.app, scope, receive, send, cors)

    def _listed(self, origin: str | None) -> bool:
        try:
            return origin is not None and normalise_origin(origin) in self.allowed
        except ValueError:  # "null", or not an origin at all
            return False

    async def _send_with_policy(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, cors: Mapping[str, str]
    ) -> None:
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


class BodyLimit:
    """Request bodies over ``max_body_bytes`` are refused (413): by their length, or as they arrive."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a body declared too long; count one sent without its length as it is read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            too_large = json_error(413, "request_too_large", policy.too_large(self.max_body_bytes), path=scope["path"])
            await too_large(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body_bytes:
                raise HTTPException(413, policy.too_large(self.max_body_bytes))
            return message

        return limited


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
