"""``POST /api/feedback``: a thumbs up or down on an answer this server gave, stored before the reply."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from bot import policy
from bot.server import answering
from bot.server.errors import AnswerNotVerified
from bot.server.schemas import API_ERRORS, FeedbackReceipt, RatingRequest
from bot.server.services import Services, get_services

router = APIRouter(prefix="/api", responses=API_ERRORS, tags=["feedback"])
_NOT_VERIFIED: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "Not an answer this server gave, unchanged (`answer_not_verified`), or the request comes "
        "from a site not in BOT_CORS_ORIGINS (`origin_not_allowed`).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
    }
}


@router.post("/feedback", response_model=FeedbackReceipt, status_code=201, responses=_NOT_VERIFIED,
             dependencies=[Depends(answering.admitted)])  # fmt: skip
def feedback(body: RatingRequest, services: Services = Depends(get_services)) -> FeedbackReceipt:  # noqa: B008
    """Rate an answer (thumbs up or down, optional comment); it is stored before this returns.

    The answer must be one this server gave, unchanged, with its `answer_id` and the conversation it was asked
    in (`history`); anything else is refused (403 `answer_not_verified`).
    """
    if not answering.verified(services, body.answer, body.history):
        raise AnswerNotVerified(policy.ANSWER_NOT_VERIFIED)
    return FeedbackReceipt(id=answering.rate(services, body.feedback(), channel="api"))
