"""The one request policy every way in calls: ``/api/chat``, ``/api/chat/stream``, ``/api/feedback`` and the page.

For each question, in this order: who is asking (``client_address``, derived here only, from the address
``bot.server.forwarded`` resolved); their rate limit and their embedding site's daily cap (``admit`` raises
``RateLimited``) — counted once, by the gate (``bot.server.gate``) in front of every route, Gradio's included,
before anything reads the body; the engine loaded and its store reachable (``NotReady`` /
``StoreUnavailable``); text that can't be encoded (a lone surrogate) answered ``invalid`` without asking the
engine; one of the ``BOT_WORKER_THREADS`` answer slots, waiting its turn when all are busy (a stream holds its
slot until its answer is complete); a store lost on the way raised as ``StoreUnavailable``; and the answer
recorded (metrics, the request's log line) and given an id (``served``) that a rating must name. How each
refusal is told, on the API and on the page alike, is ``errors.refusal``.

The OpenAI-compatible API (``/v1``) adds who a keyed client is: with ``BOT_API_KEYS`` set it must carry one
of the keys (``api_key``), and it is limited per key, and per end user when the request names one (or Open
WebUI's user header does), rather than per address (``admit_keyed``) — counted by its route, which has read
the request's ``user``, not by the gate.

A request carrying one of ``BOT_QA_KEYS`` (the QA suite, ``python -m bot eval --url``) counts against no
limit or cap on any of these ways in, and is let into ``/v1`` as if it carried an API key (``qa_suite``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterable, MutableMapping
from typing import Any

import anyio
from fastapi import Depends, Request

from bot import policy
from bot.contract import Answer, make_readable, readable_request
from bot.feedback import STORE_ERRORS, Feedback
from bot.observability import request_fields
from bot.server import metrics
from bot.server.errors import ClientProblem, FeedbackUnavailable, StoreUnavailable
from bot.server.forwarded import client_key
from bot.server.middleware import embedding_site
from bot.server.schemas import ServedAnswer
from bot.server.services import Loaded, Services, get_services

log = logging.getLogger("bot.server.answering")


#: Where the gate notes that it counted a request (``scope["state"]``): ``ask`` or ``rate``.
_ADMITTED = "admitted"


def client_address(request: object | None) -> str:
    """Who is asking, for rate limits: the client's address (IPv6: its /64), as ``Forwarded`` resolved it.

    ``request``: Starlette's or Gradio's (which passes ``client`` through); ``None`` when there is none.
    """
    client = getattr(request, "client", None)
    return client_key(str(client.host)) if client is not None and client.host else "unknown"


def scope_client(scope: Any) -> str:
    """``client_address`` of a request's ASGI scope."""
    client = scope.get("client")
    return client_key(str(client[0])) if client else "unknown"


def admit(services: Services, client: str, site: str | None = None, *, rating: bool = False) -> Loaded:
    """Count a question (``rating``: a rating) from ``client`` (on embedding ``site``), then what answers it.

    Raises ``RateLimited`` (not counted), then ``StoreUnavailable`` or ``NotReady`` (counted: asking again at
    once doesn't help).
    """
    services.limiter.hit(client, site, rating=rating)
    return services.loaded()


def mark_admitted(scope: MutableMapping[str, Any], kind: str) -> None:
    """Note on the request that the gate counted it (as ``ask`` or ``rate``): nothing further in counts it again."""
    scope.setdefault("state", {})[_ADMITTED] = kind


def _gate_counted(scope: Any) -> bool:
    return isinstance(scope, dict) and _ADMITTED in scope.get("state", {})


async def admitted(request: Request, services: Services = Depends(get_services)) -> Loaded:  # noqa: B008
    """What answers a request the gate admitted (a FastAPI dependency); counted here if it somehow wasn't."""
    if _gate_counted(request.scope) or qa_suite(services, request.headers.get("authorization")):
        return services.loaded()
    rating = request.url.path.startswith("/api/feedback")
    return admit(services, client_address(request), embedding_site(request.scope), rating=rating)


def admit_page(services: Services, request: Any, *, rating: bool = False) -> Loaded:
    """``admitted`` for the chat page's handlers (``request``: Gradio's, which wraps the queue's HTTP request)."""
    inner = getattr(request, "request", None)
    if _gate_counted(getattr(inner, "scope", None)):
        return services.loaded()
    return admit(services, client_address(request), rating=rating)


def qa_suite(services: Services, authorization: str | None) -> bool:
    """Whether a request's ``Authorization`` is one of ``BOT_QA_KEYS`` (the QA suite): it counts against no limit."""
    return services.qa_keys.required and services.qa_keys.match(authorization) is not None


async def answer(services: Services, loaded: Loaded, question: str, history: Iterable[Any]) -> Answer:
    """The answer to ``question``, computed in a worker thread once an answer slot is free."""
    if not readable_request(question, history):
        return unreadable(services, loaded, question)
    try:
        found = await anyio.to_thread.run_sync(loaded.engine.ask, question, history, limiter=loaded.slots)
    except Exception as error:
        if services.is_store_failure(error):
            raise StoreUnavailable from error
        raise
    record(services, found)
    return found


async def stream(
    services: Services, loaded: Loaded, question: str, history: Iterable[Any]
) -> AsyncGenerator[str | Answer, None]:
    """The same answer as pieces of its text, then the ``Answer``; the answer slot is held until then.

    Close it (``contextlib.aclosing``) when stopping early: that gives the slot back at once.
    """
    if not readable_request(question, history):
        yield unreadable(services, loaded, question)
        return
    # A token of our own rather than the current task: the generator may be closed from another task.
    holder = object()
    await loaded.slots.acquire_on_behalf_of(holder)
    pieces = loaded.engine.stream(question, history)
    try:
        while (piece := await anyio.to_thread.run_sync(next, pieces, None)) is not None:
            if isinstance(piece, Answer):
                record(services, piece)
            yield piece
    except Exception as error:
        if services.is_store_failure(error):
            raise StoreUnavailable from error
        raise
    finally:
        loaded.slots.release_on_behalf_of(holder)


def unreadable(services: Services, loaded: Loaded, question: str) -> Answer:
    """The ``invalid`` answer to text that can't be encoded (a lone surrogate): its question made readable."""
    found = loaded.engine.reject(make_readable(question), "unreadable")
    record(services, found)
    return found


def served(services: Services, answer: Answer, history: Iterable[Any]) -> ServedAnswer:
    """``answer`` as the API and the page's API give it: with the signed id a rating of it must name."""
    answer_id = services.signer.sign(answer, history) if services.signer is not None else ""
    return ServedAnswer.model_construct(**dict(answer), answer_id=answer_id)


def verified(services: Services, answer: ServedAnswer, history: Iterable[Any]) -> bool:
    """Whether ``answer`` is one this server gave, unchanged, in the context of ``history``."""
    return services.signer is not None and services.signer.verify(answer, history, answer.answer_id)


def record(services: Services, answer: Answer) -> None:
    """Record an answer in the metrics and in the request's log line."""
    metrics.observe_answer(answer)
    if services.engine is not None:
        metrics.CACHES.sync(services.engine.caches)
        metrics.set_index_version(services.engine.index.manifest.version)
    fields = request_fields()
    if fields is not None:
        fields.update(answer_status=answer.status.value, reason=answer.reason, timings_ms=answer.timings_ms)


# -- keyed clients: the OpenAI-compatible API (BOT_API_KEYS) ---------------------------------------


async def api_key(request: Request, services: Services = Depends(get_services)) -> str | None:  # noqa: B008
    """The id of the API key the request carries (a FastAPI dependency); ``None`` when no keys are configured.

    With ``BOT_API_KEYS`` set, a request without one of the keys is refused (401) before anything else.
    """
    if not services.api_keys.required or qa_suite(services, request.headers.get("authorization")):
        return None
    found = services.api_keys.match(request.headers.get("authorization"))
    if found is None:
        raise ClientProblem(401, "invalid_api_key", policy.INVALID_API_KEY, headers={"WWW-Authenticate": "Bearer"})
    return found


#: The end user a chat front-end names in a header (Open WebUI's, with ENABLE_FORWARD_USER_INFO_HEADERS).
_FORWARDED_USER = "x-openwebui-user-id"


def admit_keyed(services: Services, request: Request, *, key: str | None, user: str | None) -> Loaded:
    """``admit`` for the OpenAI-compatible API: a keyed client counts per key and end user, others per address.

    The end user is the request's ``user``, or else the one Open WebUI names in ``X-OpenWebUI-User-Id``; it
    counts only under a key: without one, anybody could pick a fresh name per request.
    """
    if qa_suite(services, request.headers.get("authorization")):
        return services.loaded()
    if key is None:
        client = client_address(request)
    else:
        user = user or request.headers.get(_FORWARDED_USER, "")[:256]
        client = f"key:{key}" + (f"/user:{user}" if user else "")
    return admit(services, client, embedding_site(request.scope))


# -- ratings ----------------------------------------------------------------------------------------


def rate(services: Services, feedback: Feedback, *, channel: str) -> int:
    """Store a rating (``channel``: ``api`` or ``page``); its id, or ``FeedbackUnavailable``.

    Counted by the gate before it gets here (ratings have an allowance of their own); the API's are verified
    first (``verified``), the page's are of the answers it keeps itself.
    """
    engine, store, _slots = services.loaded()
    try:
        return store.add(feedback, engine_version=engine.version, channel=channel)
    except STORE_ERRORS as error:
        log.error("storing a rating failed (%s: %s)", error.__class__.__name__, error, exc_info=True)
        metrics.FAILURES.labels("feedback_write").inc()
        raise FeedbackUnavailable from error


def comment(services: Services, feedback_id: int, text: str) -> None:
    """Attach a comment to a stored rating, or ``FeedbackUnavailable``."""
    store = services.loaded().store
    try:
        store.add_comment(feedback_id, text)
    except STORE_ERRORS as error:
        log.error("storing a comment failed (%s: %s)", error.__class__.__name__, error, exc_info=True)
        metrics.FAILURES.labels("feedback_write").inc()
        raise FeedbackUnavailable from error
