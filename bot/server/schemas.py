"""The API's own request and response bodies (the answer itself is ``bot.contract.Answer``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from bot.contract import Answer, Message, readable
from bot.feedback import MAX_COMMENT_CHARS, Feedback


class ChatRequest(BaseModel):
    """A question and the conversation so far."""

    message: str = Field(description="The question (longer than BOT_MAX_QUESTION_CHARS: an `invalid` answer).",
                         examples=["Where should my feet go on the leg press?"])  # fmt: skip
    history: list[Message] = Field(
        default_factory=list, description="Earlier turns, oldest first: user questions and the answers' text."
    )


class ServedAnswer(Answer):
    """The answer JSON contract as the API gives it, with the id a rating of it must name."""

    answer_id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{43}$", description="Signed id of this answer; `/api/feedback` checks it."
    )


class RatingRequest(BaseModel):
    """A thumbs up or down on an answer this server gave, sent back exactly as it came (with its `answer_id`)."""

    rating: Literal["up", "down"]
    comment: str = Field("", max_length=MAX_COMMENT_CHARS, description="Optional words on what was wrong or right.")
    history: list[Message] = Field(
        default_factory=list, max_length=200, description="The conversation before the question, as it was sent."
    )
    answer: ServedAnswer = Field(description="The answer being rated, exactly as the API returned it.")

    @field_validator("comment")
    @classmethod
    def _readable_comment(cls, comment: str) -> str:
        if not readable(comment):
            raise ValueError("the text contains characters that can't be encoded (a lone surrogate)")
        return comment

    @field_validator("history")
    @classmethod
    def _readable_history(cls, history: list[Message]) -> list[Message]:
        if not all(readable(turn.content) for turn in history):
            raise ValueError("the text contains characters that can't be encoded (a lone surrogate)")
        return history

    def feedback(self) -> Feedback:
        """What the feedback store keeps."""
        return Feedback(rating=self.rating, comment=self.comment, history=self.history, answer=self.answer)


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
    store: str = Field(
        description="Where the vectors live: `embedded chroma (one process)` or `chroma server`; its URL only "
        "to loopback or with the metrics token."
    )
    composer: str = Field(description="How answers are written (`extractive`, or the chat model).")
    worker: int | None = Field(
        None, description="Process id of the worker that answered (only to loopback or with the metrics token)."
    )
    page: str = Field(
        "off",
        description="The chat page: `starting` while it is built (the API answers already), `ready`, `failed`, "
        "or `off` when this app serves no page.",
    )
    limits: str = Field(
        "memory",
        description="Where the rate limits are counted: `memory` (this worker), `redis` (shared by every worker), "
        "or `degraded` while Redis is unreachable (this worker's memory; answers go on).",
    )
    feedback: str = Field("sqlite", description="Where ratings are kept: `sqlite` or `postgresql`.")


class SiteAccess(BaseModel):
    """Whether the site asking may use the coach (its widget, the API, framing the page)."""

    allowed: bool
    message: str | None = Field(None, description="Why not, in plain words.")


class FeedbackReceipt(BaseModel):
    """The stored rating's id."""

    id: int


class ApiError(BaseModel):
    """Every error response."""

    error: str = Field(description="Machine-readable code, e.g. `rate_limited`.")
    message: str = Field(description="What went wrong, in plain words.")
    disclaimer: str | None = Field(None, description="The medical disclaimer, on replies that stand for an answer.")


def _error(description: str) -> dict[str, Any]:
    # Always JSON, whatever the route's own content type (the stream's is text/event-stream).
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
    }


#: The errors any route may answer with (the server's layers answer them before a route runs), for the docs.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error(
        "The Host header isn't one this server answers to (`host_not_allowed`), or the body can't be "
        "decoded (`bad_request`)."
    ),
    403: _error("The request comes from a site not in BOT_CORS_ORIGINS (`origin_not_allowed`)."),
    404: _error("There is no such path (`not_found`)."),
    405: _error("The path doesn't take this method (`method_not_allowed`)."),
    408: _error("The request's headers or body arrived too slowly (`request_timeout`)."),
    413: _error("The body is over BOT_MAX_BODY_BYTES (`request_too_large`)."),
    500: _error("Something failed on the server's side (`internal_error`), naming nothing internal."),
}
#: The errors every ``/api`` route that asks or rates may answer with, for the OpenAPI documentation.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    422: _error("The body isn't JSON in the expected form (`invalid_request`)."),
    429: _error("Too many requests from this client, or this site's daily cap (`rate_limited`; `Retry-After`)."),
    503: _error(
        "Still starting, the store is unreachable, or too many connections (`not_ready`, "
        "`store_unavailable`, `server_busy`; with the disclaimer and `Retry-After`)."
    ),
}
