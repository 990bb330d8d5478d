"""What goes wrong, mapped once: the request policy's refusals and the API's JSON error for every failure.

A refusal (rate limited, still starting, store unreachable, rating not stored) has one ``Refusal``: the API
turns it into a JSON error with its status and ``Retry-After``, the chat page shows the same message as a
notice. Anything else is a plain-words 500 that names nothing internal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot import policy
from bot.server.ratelimit import RateLimited
from bot.server.schemas import ApiError

log = logging.getLogger("bot.server.errors")

ERROR_CODES = {
    400: "bad_request",
    401: "not_authorised",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "not_ready",
}


class NotReady(Exception):
    """The engine is still loading (or the server is stopping)."""


class StoreUnavailable(Exception):
    """The Chroma server holding the vectors cannot be reached."""


class FeedbackUnavailable(Exception):
    """A rating could not be stored."""


class AnswerNotVerified(Exception):
    """A rating names an answer this server didn't give (or one changed since)."""


@dataclass(frozen=True)
class Refusal:
    """How a request the policy turned down is answered, on the API and on the page alike."""

    status: int
    code: str
    message: str
    retry_after: int
    #: Whether the reply stands in for an answer, and so carries the medical disclaimer.
    disclaimer: bool = False

    def body(self) -> ApiError:
        """The JSON error body (also the ``error`` event of a stream)."""
        disclaimer = policy.DISCLAIMER if self.disclaimer else None
        return ApiError(error=self.code, message=self.message, disclaimer=disclaimer)

    def response(self) -> JSONResponse:
        """The API's reply: the body, the status and ``Retry-After``."""
        return JSONResponse(self.body().model_dump(exclude_none=True), status_code=self.status,
                            headers={"Retry-After": str(self.retry_after)})  # fmt: skip


def refusal(error: BaseException) -> Refusal | None:
    """The refusal ``error`` stands for, or ``None`` for a failure the policy doesn't know (a 500)."""
    if isinstance(error, RateLimited):
        return Refusal(429, "rate_limited", error.message, error.retry_after)
    if isinstance(error, NotReady):
        return Refusal(503, "not_ready", policy.NOT_READY, 5, disclaimer=True)
    if isinstance(error, StoreUnavailable):
        log.warning("the vector store is unreachable (%s)", error.__cause__ or "still down")
        return Refusal(503, "store_unavailable", policy.STORE_UNAVAILABLE, 10, disclaimer=True)
    if isinstance(error, FeedbackUnavailable):
        return Refusal(503, "feedback_unavailable", policy.FEEDBACK_UNAVAILABLE, 30)
    return None


def internal_error() -> ApiError:
    """The body of a 500: plain words, nothing internal."""
    return ApiError(error="internal_error", message=policy.INTERNAL_ERROR)


def json_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error response in the API's one shape, ``{"error", "message"}``."""
    return JSONResponse(ApiError(error=code, message=message).model_dump(exclude_none=True), status_code=status,
                        headers=headers)  # fmt: skip


# -- the handlers (FastAPI's exception_handlers) -------------------------------------------------------


async def _refused(request: Request, error: Exception) -> Response:
    found = refusal(error)
    assert found is not None  # registered for the refusals' exception types only
    return found.response()


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    message = error.detail if isinstance(error.detail, str) and error.status_code != 500 else policy.REQUEST_FAILED
    if error.status_code == 400 and error.detail == "There was an error parsing the body":  # FastAPI's words
        message = policy.BODY_NOT_READABLE
    elif error.status_code == 404:
        message = policy.no_such_path(request.url.path)
    elif error.status_code == 405:
        message = policy.method_not_supported(request.method, request.url.path)
    return json_error(error.status_code, ERROR_CODES.get(error.status_code, "error"), message, error.headers)


async def _not_verified(request: Request, error: Exception) -> Response:
    return json_error(403, "answer_not_verified", str(error))


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return json_error(422, "invalid_request", policy.malformed_request(problems))


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    body = internal_error()
    return json_error(500, body.error, body.message)


Handler = Callable[[Request, Exception], Coroutine[Any, Any, Response]]

#: Every failure's JSON reply, for ``FastAPI(exception_handlers=...)``.
HANDLERS: dict[int | type[Exception], Handler] = {
    StarletteHTTPException: _http_error,
    RequestValidationError: _validation_error,
    RateLimited: _refused,
    NotReady: _refused,
    StoreUnavailable: _refused,
    FeedbackUnavailable: _refused,
    AnswerNotVerified: _not_verified,
    Exception: _unexpected,
}
