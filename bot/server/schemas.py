"""The API's own request and response bodies (the answer itself is ``bot.contract.Answer``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from bot.contract import Message


class ChatRequest(BaseModel):
    """A question and the conversation so far."""

    message: str = Field(description="The question (longer than BOT_MAX_QUESTION_CHARS: an `invalid` answer).",
                         examples=["Where should my feet go on the leg press?"])  # fmt: skip
    history: list[Message] = Field(
        default_factory=list, description="Earlier turns, oldest first: user questions and the answers' text."
    )


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
    store: str = Field(description="Where the vectors live: the embedded store or the Chroma server's URL.")
    composer: str = Field(description="How answers are written (`extractive`, or the chat model).")
    worker: int = Field(description="Process id of the worker that answered (several may serve one port).")
    page: str = Field(
        "off",
        description="The chat page: `starting` while it is built (the API answers already), `ready`, `failed`, "
        "or `off` when this app serves no page.",
    )


class FeedbackReceipt(BaseModel):
    """The stored rating's id."""

    id: int


class ApiError(BaseModel):
    """Every error response."""

    error: str = Field(description="Machine-readable code, e.g. `rate_limited`.")
    message: str = Field(description="What went wrong, in plain words.")
    disclaimer: str | None = Field(None, description="The medical disclaimer, on replies that stand for an answer.")


#: The errors every ``/api`` route may answer with, for the OpenAPI documentation.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ApiError, "description": "The body isn't in the expected form."},
    429: {"model": ApiError, "description": "Too many requests from this client, or this site's daily cap."},
    503: {"model": ApiError, "description": "The engine is still loading."},
}
