"""What a rating is: as the page or an API client sends it, and as the store reads it back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from bot.contract import Answer, Message, Status

#: Eval-set ``expect`` for each status, so an exported case reads like the hand-written ones.
EXPECT = {
    Status.answered: "answer",
    Status.escalated: "escalate",
    Status.out_of_scope: "refuse",
    Status.not_found: "not_found",
    Status.invalid: "invalid",
    Status.chat: "chat",
}
MAX_COMMENT_CHARS = 2000


class Feedback(BaseModel):
    """A rating of one answer, as the page or an API client sends it."""

    rating: Literal["up", "down"]
    comment: str = Field("", max_length=MAX_COMMENT_CHARS, description="Optional words on what was wrong or right.")
    history: list[Message] = Field(default_factory=list, description="The conversation before the question.")
    answer: Answer = Field(description="The answer being rated, exactly as the API returned it.")


@dataclass(frozen=True)
class StoredFeedback:
    """A feedback row as read back."""

    id: int
    created_at: str
    rating: int
    comment: str
    question: str
    history: list[dict[str, str]]
    answer: str
    status: str
    reason: str | None
    citations: list[dict[str, Any]]
    engine_version: str
    channel: str
    verified: bool
