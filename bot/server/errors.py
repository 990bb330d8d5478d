"""What goes wrong, mapped once: the request policy's refusals and the API's JSON error for every failure.

A refusal (rate limited, still starting, store unreachable, rating not stored) has one ``Refusal``: the API
turns it into a JSON error with its status and ``Retry-After``, the chat page shows the same message as a
notice. Anything else is a plain-words 500 that names nothing internal. Under ``/v1/`` (the OpenAI-compatible
API) the same failures are told in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``: the path
decides, here and nowhere else (``json_error(path=...)``, ``Refusal.response(path)``).
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
from bot.server.openai_schemas import REFUSAL_CODES, OpenAIError, OpenAIErrorBody
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

    def response(self, path: str | None = None) -> JSONResponse:
        """The API's reply: the body (in OpenAI's shape under ``/v1/``), the status and ``Retry-After``."""
        headers = {"Retry-After": str(self.retry_after)}
        if is_openai_path(path):
            return openai_response(self.status, self.openai_body(), headers)
        return JSONResponse(self.body().model_dump(exclude_none=True), status_code=self.status, headers=headers)

    def openai_body(self) -> OpenAIErrorBody:
        """The body in OpenAI's shape (also the ``error`` event of a ``/v1`` stream)."""
        return openai_error(self.status, self.code, self.message, disclaimer=self.body().disclaimer)


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


def json_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None, *,
               path: str | None = None) -> JSONResponse:  # fmt: skip
    """An error response in the API's one shape, ``{"error", "message"}`` (OpenAI's when ``path`` is under /v1/)."""
    if is_openai_path(path):
        return openai_response(status, openai_error(status, code, message), headers)
    return JSONResponse(ApiError(error=code, message=message).model_dump(exclude_none=True), status_code=status,
                        headers=headers)  # fmt: skip


# -- the OpenAI-compatible API (/v1): the same failures in OpenAI's error shape ---------------------------

OPENAI_PREFIX = "/v1/"
#: Our codes that OpenAI has its own names for.
_OPENAI_CODES = {"rate_limited": "rate_limit_exceeded", "not_found": "unknown_url"}


class ClientProblem(Exception):
    """A request the OpenAI-compatible API refuses on its own terms: an unknown model, a missing API key."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.code, self.message, self.param, self.headers = status, code, message, param, headers


def is_openai_path(path: str | None) -> bool:
    """Whether ``path`` belongs to the OpenAI-compatible API, whose errors are told in OpenAI's shape."""
    return path is not None and (path == "/v1" or path.startswith(OPENAI_PREFIX))


def openai_error(status: int, code: str | None, message: str, *, param: str | None = None,
                 disclaimer: str | None = None) -> OpenAIErrorBody:  # fmt: skip
    """An error body in OpenAI's shape; ``type`` follows OpenAI's use: by the status."""
    kind = "server_error" if status >= 500 else "requests" if status == 429 else "invalid_request_error"
    code = _OPENAI_CODES.get(code, code) if code is not None else None
    return OpenAIErrorBody(error=OpenAIError(message=message, type=kind, param=param, code=code, disclaimer=disclaimer))


def openai_response(status: int, body: OpenAIErrorBody, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error response of the OpenAI-compatible API."""
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _openai_validation_error(error: RequestValidationError) -> JSONResponse:
    """A request ``/v1`` can't take is a 400 naming its first problem (OpenAI names one)."""
    item = error.errors()[0] if error.errors() else {}
    kind, problem = str(item.get("type", "")), str(item.get("msg", "invalid"))
    where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or None
    if kind in REFUSAL_CODES:  # our own refusals say it all in their message
        message, code = problem, kind
    elif kind == "json_invalid":
        message, code, where = policy.unreadable_json(str(item.get("ctx", {}).get("error", problem))), None, None
    elif kind == "missing":
        message, code = policy.missing_parameter(where or "body"), "missing_required_parameter"
    else:
        message, code = policy.invalid_parameter(where or "body", problem), "invalid_value"
    return openai_response(400, openai_error(400, code, message, param=where))


# -- the handlers (FastAPI's exception_handlers) -------------------------------------------------------


async def _refused(request: Request, error: Exception) -> Response:
    found = refusal(error)
    assert found is not None  # registered for the refusals' exception types only
    return found.response(request.url.path)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    message = error.detail if isinstance(error.detail, str) and error.status_code != 500 else policy.REQUEST_FAILED
    if error.status_code == 400 and error.detail == "There was an error parsing the body":  # FastAPI's words
        message = policy.BODY_NOT_READABLE
    elif error.status_code == 404:
        message = policy.no_such_path(request.url.path)
    elif error.status_code == 405:
        message = policy.method_not_supported(request.method, request.url.path)
    code = ERROR_CODES.get(error.status_code, "error")
    return json_error(error.status_code, code, message, error.headers, path=request.url.path)


async def _not_verified(request: Request, error: Exception) -> Response:
    return json_error(403, "answer_not_verified", str(error))


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if is_openai_path(request.url.path):
        return _openai_validation_error(error)
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return json_error(422, "invalid_request", policy.malformed_request(problems))


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    body = internal_error()
    return json_error(500, body.error, body.message, path=request.url.path)


async def _client_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, ClientProblem)
    if not is_openai_path(request.url.path):
        return json_error(error.status, error.code, error.message, error.headers)
    return openai_response(error.status, openai_error(error.status, error.code, error.message, param=error.param),
                           error.headers)  # fmt: skip


Handler = Callable[[Request, Exception], Coroutine[Any, Any, Response]]

#: Every failure's JSON reply, for ``FastAPI(exception_handlers=...)``.
HANDLERS: dict[int | type[Exception], Handler] = {
    StarletteHTTPException: _http_error,
    RequestValidationError: _validation_error,
    RateLimited: _refused,
    NotReady: _refused,
    StoreUnavailable: _refused,
    FeedbackUnavailable: _refused,
    ClientProblem: _client_problem,
    AnswerNotVerified: _not_verified,
    Exception: _unexpected,
}
