"""``/`` while the chat page is built: a "starting up" page that reloads itself, then the page itself.

The API is ready seconds before the chat page (importing Gradio takes longer than loading the engine), so
``PageSlot`` is mounted at ``/`` from the start and hands requests to the page once it is served. Until then
``/`` is a small 503 page, and any other path is the API's JSON 404, as if nothing were there.

Only what the page uses reaches Gradio (``PAGE_ROUTES``): the page, its assets and config, its queue and its
``ask`` API. Everything else Gradio would serve — uploads, files from disk, proxying, monitoring, MCP — is a
JSON 404 (or 405 for a method the path doesn't take). ``events`` and ``apis`` say what each of the page's
events does, for the gate (``bot.server.gate``) to count.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import policy
from bot.server.errors import ERROR_CODES

_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{refresh}
<title>{title}</title></head><body style="font-family: system-ui, sans-serif; margin: 2rem">
<p role="status">{message}</p></body></html>"""


_GET = ("GET", "HEAD")
#: What the page uses of Gradio's routes: exact paths, and prefixes (ending in "/"), with their methods.
PAGE_ROUTES: dict[str, tuple[str, ...]] = {
    "/": _GET,
    "/config": _GET,
    "/favicon.ico": _GET,
    "/theme.css": _GET,
    "/robots.txt": _GET,
    "/gradio_api/info": _GET,
    "/gradio_api/queue/data": _GET,
    "/gradio_api/queue/join": ("POST",),
    "/gradio_api/run/predict": ("POST",),  # the events that skip the queue (an example button, "new conversation")
    "/assets/": _GET,
    "/static/": _GET,
    "/svelte/": _GET,
    "/gradio_api/heartbeat/": _GET,
    "/gradio_api/call/": ("POST", *_GET),  # the page's REST API (its named endpoints: ``apis``)
}


def page_methods(path: str) -> tuple[str, ...] | None:
    """The methods the page takes on ``path``, or ``None`` if the page has no such path."""
    bare = path.rstrip("/") or "/"
    if bare in PAGE_ROUTES:
        return PAGE_ROUTES[bare]
    return next((methods for prefix, methods in PAGE_ROUTES.items() if prefix.endswith("/") and prefix != "/"
                 and path.startswith(prefix)), None)  # fmt: skip


class PageSlot:
    """The ASGI app at ``/``: the placeholder while ``status`` is ``starting`` or ``failed``, then the page."""

    def __init__(self) -> None:
        self.status = "starting"
        self._page: ASGIApp | None = None
        #: What each of the page's events does (its ``fn_index`` → ``ask``, ``rate`` or ``free``), once served.
        self.events: Mapping[int, str] = {}
        #: The same for its named REST endpoints (``/gradio_api/call/<name>``).
        self.apis: Mapping[str, str] = {}

    def serve(self, page: ASGIApp, *, events: Mapping[int, str], apis: Mapping[str, str]) -> None:
        """From now on, what ``/`` serves is ``page``, whose events do what ``events`` and ``apis`` say."""
        self.events, self.apis = dict(events), dict(apis)
        self._page, self.status = page, "ready"

    def failed(self) -> None:
        """The page could not be built: say so at ``/`` (without reloading) from now on."""
        self.status = "failed"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request to the page, or answer it in the page's place."""
        if self._page is not None and scope["type"] == "http":
            methods = page_methods(scope["path"])
            if methods is None:
                raise HTTPException(404)
            if scope["method"] not in methods:
                raise HTTPException(405, headers={"Allow": ", ".join(methods)})
            await self._page(scope, receive, _project_errors(send))
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["path"] != "/":
            raise HTTPException(404)
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        await self._placeholder()(scope, receive, send)

    def _placeholder(self) -> Response:
        if self.status == "failed":
            message, refresh = policy.PAGE_UNAVAILABLE, ""
        else:
            message, refresh = policy.PAGE_STARTING, '<meta http-equiv="refresh" content="1">'
        page = _HTML.format(refresh=refresh, title=html.escape(policy.PAGE_TITLE), message=html.escape(message))
        headers = {"Retry-After": "1", "Cache-Control": "no-store"}
        return Response(page, status_code=503, media_type="text/html; charset=utf-8", headers=headers)


def _project_errors(send: Send) -> Send:
    """``send`` with Gradio's JSON errors (``{"detail": …}``) given the project's shape too.

    ``error`` and ``message`` are added; ``detail`` stays, which is what Gradio's own client reads.
    """
    started: Message | None = None
    body = b""

    async def send_reshaped(message: Message) -> None:
        nonlocal started, body
        if message["type"] == "http.response.start":
            is_json = Headers(raw=message.get("headers", [])).get("content-type", "").startswith("application/json")
            if message["status"] < 400 or not is_json:
                await send(message)
                return
            started = message
            return
        if started is None or message["type"] != "http.response.body":
            await send(message)
            return
        body += message.get("body", b"")
        if message.get("more_body", False):
            return
        await send_error(started, body)

    async def send_error(start: Message, raw: bytes) -> None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and "error" not in parsed:
            detail = parsed.get("detail")
            status = start["status"]
            message = detail if isinstance(detail, str) and status != 500 else policy.REQUEST_FAILED
            raw = json.dumps({"error": ERROR_CODES.get(status, "error"), "message": message, **parsed}).encode()
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        headers["content-length"] = str(len(raw))
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": raw})

    return send_reshaped
