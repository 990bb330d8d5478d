"""``/`` while the chat page is built: a "starting up" page that reloads itself, then the page itself.

The API is ready seconds before the chat page (importing Gradio takes longer than loading the engine), so
``PageSlot`` is mounted at ``/`` from the start and hands every request to the page once it is served.
Until then ``/`` is a small 503 page, and any other path is the API's JSON 404, as if nothing were there.
"""

from __future__ import annotations

import html

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bot import policy

_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{refresh}
<title>{title}</title></head><body style="font-family: system-ui, sans-serif; margin: 2rem">
<p role="status">{message}</p></body></html>"""


class PageSlot:
    """The ASGI app at ``/``: the placeholder while ``status`` is ``starting`` or ``failed``, then the page."""

    def __init__(self) -> None:
        self.status = "starting"
        self._page: ASGIApp | None = None

    def serve(self, page: ASGIApp) -> None:
        """From now on, ``/`` and everything under it is ``page``."""
        self._page, self.status = page, "ready"

    def failed(self) -> None:
        """The page could not be built: say so at ``/`` (without reloading) from now on."""
        self.status = "failed"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request to the page, or answer it in the page's place."""
        if self._page is not None:
            await self._page(scope, receive, send)
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
