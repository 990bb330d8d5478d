"""``POST /api/feedback``: a thumbs up or down on an answer, stored before the reply."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from bot.feedback import Feedback
from bot.server import answering
from bot.server.schemas import API_ERRORS, FeedbackReceipt
from bot.server.services import Services, get_services

router = APIRouter(prefix="/api", responses=API_ERRORS, tags=["feedback"])


@router.post("/feedback", response_model=FeedbackReceipt, status_code=201,
             dependencies=[Depends(answering.admitted)])  # fmt: skip
def feedback(body: Feedback, services: Services = Depends(get_services)) -> FeedbackReceipt:  # noqa: B008
    """Rate an answer (thumbs up or down, optional comment); it is stored before this returns."""
    return FeedbackReceipt(id=answering.rate(services, body, channel="api"))
