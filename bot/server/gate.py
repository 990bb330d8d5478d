"""The gate in front of every route, Gradio's included: requests that ask or rate are counted here, first.

Gradio's routes bypass FastAPI's route dependencies, so the request policy's limits are applied by this ASGI
layer, by what a request *does* rather than by a list of today's routes:

- a ``POST`` under ``/api/`` asks (``/api/chat``, ``/api/chat/stream``…), except under ``/api/feedback``,
  which rates;
- a ``POST`` under ``/v1/`` (the OpenAI-compatible API) is counted by its route (``answering.admit_keyed``):
  a keyed client counts per key and per the end user its body names, which only the route has read;
- a ``POST`` of one of the chat page's events (``/gradio_api/queue/join``, ``/gradio_api/run/*``,
  ``/gradio_api/call/*``, ``/gradio_api/api/*``) asks, rates or does neither according to the handler it
  names (``PageSlot.events``, filled in when the page is built); an event the page doesn't have is a 404;
- everything else (the page itself, its assets, ``/config``, the docs, health) is not counted, and neither
  is a request carrying one of ``BOT_QA_KEYS`` (the QA suite).

An event of the page is read (within ``BOT_MAX_BODY_BYTES``) and screened before Gradio sees it: its question
must be within ``BOT_MAX_QUESTION_CHARS`` (the question box stops there), a comment within the comment limit.
Then, for what asks or rates, ``answering.admit`` counts it against the client's limits — so a client over
its limit is refused here, before anything reaches a visitor's session — and the request is marked counted,
so the route behind doesn't count it again. Refusals are the API's JSON errors (with ``detail`` too on the
page's routes, which Gradio's client shows).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from enum import Enum
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import policy
from bot.feedback import MAX_COMMENT_CHARS
from bot.server import answering
from bot.server.errors import json_error, refusal
from bot.server.middleware import embedding_site
from bot.server.services import Services

log = logging.getLogger("bot.server.gate")


class Kind(str, Enum):
    """What a request does, for the limits."""

    ask = "ask"
    rate = "rate"
    #: counted by its route, once it knows who the keyed client is
    keyed = "keyed"
    free = "free"


#: Our own API and the OpenAI-compatible one.
API_PREFIXES = ("/api/", "/v1/")
#: A POST under these is counted by its route (``answering.admit_keyed``).
KEYED_PREFIXES = ("/v1/",)
#: … except under these, which rate.
RATE_PREFIXES = ("/api/feedback",)
#: Where the chat page's events arrive (Gradio's queue, and its direct and REST calls).
PAGE_EVENT_PATHS = ("/gradio_api/queue/join", "/gradio_api/run/", "/gradio_api/call/", "/gradio_api/api/")


def under(path: str, prefixes: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or below one (``/api/feedback`` is not under ``/api/feed``)."""
    return any(path == p.rstrip("/") or path.startswith(p if p.endswith("/") else p + "/") for p in prefixes)


def api_kind(method: str, path: str) -> Kind | None:
    """What a request to the API does, or ``None`` if it isn't one (the page's events are looked up)."""
    if not under(path, API_PREFIXES):
        return None
    if method != "POST":
        return Kind.free
    if under(path, KEYED_PREFIXES):
        return Kind.keyed
    return Kind.rate if under(path, RATE_PREFIXES) else Kind.ask


class Gate:
    """Count what asks or rates against the limits, and screen the page's events, before any route runs."""

    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass on, count and pass on, or refuse."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if answering.qa_suite(self.services, Headers(scope=scope).get("authorization")):
            answering.mark_admitted(scope, Kind.free.value)
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        kind = api_kind(scope["method"], path)
        if kind is not None:
            if kind in (Kind.free, Kind.keyed) or await self._admit(kind, scope, receive, send, page=False):
                await self.app(scope, receive, send)
            return
        if under(path, PAGE_EVENT_PATHS) and self.services.page_slot is not None and self.services.page_slot.events:
            await self._page_event(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _admit(self, kind: Kind, scope: Scope, receive: Receive, send: Send, *, page: bool) -> bool:
        """Count the request (refusing it if over a limit); whether it may go on."""
        client = answering.scope_client(scope)
        site = embedding_site(scope) if kind is Kind.ask else None
        try:
            answering.admit(self.services, client, site, rating=kind is Kind.rate)
        except Exception as error:
            refused = refusal(error)
            if refused is None:
                raise
            body: dict[str, Any] = refused.body().model_dump(exclude_none=True)
            if page:  # Gradio's client shows `detail`
                body["detail"] = refused.message
            response = JSONResponse(body, status_code=refused.status, headers={"Retry-After": str(refused.retry_after)})
            await response(scope, receive, send)
            return False
        answering.mark_admitted(scope, kind.value)
        return True

    async def _page_event(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read and screen an event of the chat page, count it if it asks or rates, and replay it to Gradio."""
        limit = self.services.settings.max_body_bytes
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await json_error(413, "request_too_large", policy.too_large(limit))(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            body += message.get("body", b"")
            if len(body) > limit:
                await json_error(413, "request_too_large", policy.too_large(limit))(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        problem, kind = self._screen(scope["path"], body)
        if problem is not None:
            await problem(scope, receive, send)
            return
        if kind is not Kind.free and not await self._admit(kind, scope, receive, send, page=True):
            return
        await self.app(scope, _replay(body, receive), send)

    def _screen(self, path: str, body: bytes) -> tuple[JSONResponse | None, Kind]:
        """What the event does, or the error it gets: not JSON, no such event, a question or comment too long."""
        try:
            event = json.loads(body)
        except (ValueError, RecursionError):  # bad UTF-8 included; nested past the parser's depth
            return json_error(400, "bad_request", policy.EVENT_NOT_READABLE), Kind.free
        slot = self.services.page_slot
        assert slot is not None
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if not isinstance(event, dict) or _deeper_than(event, _MAX_DEPTH):
            return json_error(400, "bad_request", policy.EVENT_NOT_READABLE), Kind.free
        index = event.get("fn_index")
        if under(path, ("/gradio_api/queue/join",)) or name == "predict":
            found = slot.events.get(index) if isinstance(index, int) else None
        else:
            found = slot.apis.get(name)
        if found is None:
            return json_error(404, "not_found", policy.no_such_path(path)), Kind.free
        kind = Kind(found)
        data = event.get("data")
        first = data[0] if isinstance(data, list) and data else None
        most = {Kind.ask: self.services.settings.max_question_chars, Kind.rate: MAX_COMMENT_CHARS}.get(kind)
        if isinstance(first, str) and most is not None and len(first) > most:
            return json_error(422, "invalid_request", policy.question_too_long(most)), kind
        return None, kind


#: How deep the page's events nest, at most (theirs: 4); Gradio's own parsing fails on thousands of levels.
_MAX_DEPTH = 32


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests more than ``limit`` lists or objects deep (without recursing)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then whatever the client sends next (its leaving)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
