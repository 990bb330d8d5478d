"""The HTTP server's own guards, below the ASGI app: slow clients and too many connections (uvicorn).

uvicorn closes idle keep-alive connections (``timeout_keep_alive``, 65 s here) but gives a client unlimited time
to send a request's headers or body, and its ``limit_concurrency`` answers a plain-text 503 without the medical
disclaimer. ``GuardedHttpProtocol`` is uvicorn's httptools protocol (passed as its ``http`` class) with:

- a deadline for each request's headers (``BOT_HEADER_TIMEOUT``), from the connection opening or the request's
  first byte: a client too slow gets a JSON 408 and the connection is closed;
- a deadline for its body (``BOT_BODY_TIMEOUT``), from the end of the headers: then the connection is closed (the
  app sees the client leave);
- at most ``BOT_MAX_CONNECTIONS`` open connections per worker process: requests on one more get the JSON 503
  (``server_busy``, with the disclaimer and ``Retry-After``), and it is closed.

``server_config`` builds the uvicorn configuration every way of serving uses (``app.py``, the tests, the
benchmarks): this protocol, no proxy headers (``bot.server.forwarded`` decides whom to believe), no ``server``
banner, no websockets (the page doesn't use them).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot import policy
from bot.server import metrics
from bot.settings import Settings

log = logging.getLogger("bot.server.protocol")

#: Idle keep-alive connections outlive a load balancer's usual 60 s, so the server never closes one just as
#: a proxy or a busy client sends the next request on it (uvicorn's 5 s did, in the soak).
KEEP_ALIVE_SECONDS = 65


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many connections a worker keeps open."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        """The limits ``settings`` name (``BOT_HEADER_TIMEOUT``, ``BOT_BODY_TIMEOUT``, ``BOT_MAX_CONNECTIONS``)."""
        return cls(settings.header_timeout, settings.body_timeout, settings.max_connections)


def _raw_response(status: str, code: str, message: str, *, disclaimer: bool) -> bytes:
    body = {"error": code, "message": message, **({"disclaimer": policy.DISCLAIMER} if disclaimer else {})}
    payload = json.dumps(body).encode()
    head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
            "retry-after: 5\r\nconnection: close\r\n\r\n")  # fmt: skip
    return head.encode() + payload


_TOO_SLOW = _raw_response("408 Request Timeout", "request_timeout", policy.REQUEST_TIMEOUT, disclaimer=False)


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    """The reply on a connection over ``max_connections``: a JSON 503 with the disclaimer, then close."""
    body = json.dumps({"error": "server_busy", "message": policy.SERVER_BUSY, "disclaimer": policy.DISCLAIMER}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", b"5"), (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a connection limit (see the module)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: ConnectionLimits = getattr(config, "connection_limits", None) or ConnectionLimits()
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; one over the limit is answered ``server_busy``; the headers' deadline starts."""
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.app = _busy
            metrics.FAILURES.labels("connection_limit").inc()
            log.warning("more than %d connections open: answering 503", self.limits.max_connections)
        self._start(self.limits.header_timeout, self._headers_too_slow)

    def on_message_begin(self) -> None:
        """A request's first byte: its headers' deadline starts, unless the connection's is running."""
        super().on_message_begin()
        if self._deadline is None:
            self._start(self.limits.header_timeout, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        """The headers are in: the body's deadline starts, if one follows."""
        self._stop()
        super().on_headers_complete()
        names = {name for name, _value in self.headers}
        has_body = (b"transfer-encoding" in names or any(n == b"content-length" and v.strip() not in (b"", b"0")
                                                          for n, v in self.headers))  # fmt: skip
        if has_body and not self.transport.is_closing():
            self._start(self.limits.body_timeout, self._body_too_slow)

    def on_message_complete(self) -> None:
        """The body is in."""
        self._stop()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline with the connection."""
        self._stop()
        super().connection_lost(exc)

    def _start(self, seconds: float, expired: Any) -> None:
        self._stop()
        self._deadline = self.loop.call_later(seconds, expired)

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            metrics.FAILURES.labels("slow_client").inc()
            self.transport.write(_TOO_SLOW)
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            metrics.FAILURES.labels("slow_client").inc()
            self.transport.close()  # the app's next receive() is http.disconnect


def server_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration for ``app`` (an ASGI app, or an import string with ``factory=True``).

    ``options``: more of ``uvicorn.Config``'s (``host`` and ``port`` default to ``settings``').
    """
    config = uvicorn.Config(
        app,
        **{
            "host": settings.host,
            "port": settings.port,
            "http": GuardedHttpProtocol,
            "ws": "none",
            "proxy_headers": False,  # bot.server.forwarded believes only BOT_TRUSTED_PROXIES
            "forwarded_allow_ips": "",
            "server_header": False,
            "timeout_keep_alive": KEEP_ALIVE_SECONDS,
            "timeout_graceful_shutdown": settings.shutdown_timeout,
            **options,
        },
    )
    config.connection_limits = ConnectionLimits.of(settings)  # type: ignore[attr-defined]  # read by the protocol
    return config
