"""``POST /api/chat`` and ``POST /api/chat/stream``: the ``ask`` contract as JSON and as server-sent events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from bot.contract import Answer
from bot.server import answering
from bot.server.errors import internal_error, refusal
from bot.server.schemas import API_ERRORS, ChatRequest, ServedAnswer
from bot.server.services import Loaded, Services, get_services

log = logging.getLogger("bot.server.routes.chat")

router = APIRouter(prefix="/api", responses=API_ERRORS, tags=["chat"])


@router.post("/chat", response_model=ServedAnswer)
async def chat(
    body: ChatRequest,
    services: Services = Depends(get_services),  # noqa: B008 - FastAPI idiom
    loaded: Loaded = Depends(answering.admitted),  # noqa: B008
) -> Response:
    """Answer a question in the context of the conversation: the `ask` JSON contract."""
    answer = await answering.answer(services, loaded, body.message, body.history)
    served = answering.served(services, answer, body.history)
    return Response(served.model_dump_json(), media_type="application/json")


_EVENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `delta`s, then one `answer` (or an `error`).",
        "content": {
            "text/event-stream": {
                "itemSchema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {"event": {"enum": ["delta", "answer", "error"]}, "data": {"type": "string"}},
                }
            }
        },
    }
}


@router.post("/chat/stream", response_class=EventSourceResponse, responses=_EVENTS)
async def chat_stream(
    body: ChatRequest,
    services: Services = Depends(get_services),  # noqa: B008
    loaded: Loaded = Depends(answering.admitted),  # noqa: B008
) -> AsyncIterator[ServerSentEvent]:
    """The same answer as server-sent events.

    `delta` events (`{"text": …}`) carry pieces of the reply as they are ready, then one `answer` event
    carries the full `Answer`. A failure mid-way is an `error` event (the body of the matching error
    response: `store_unavailable` with the disclaimer when the articles can't be reached).
    """
    try:
        async with aclosing(answering.stream(services, loaded, body.message, body.history)) as pieces:
            async for piece in pieces:
                if isinstance(piece, Answer):
                    served = answering.served(services, piece, body.history)
                    yield ServerSentEvent(event="answer", raw_data=served.model_dump_json())
                else:
                    yield ServerSentEvent(event="delta", data={"text": piece})
    except Exception as error:
        refused = refusal(error)
        if refused is None:
            log.exception("streaming an answer failed")
        failure = refused.body() if refused is not None else internal_error()
        yield ServerSentEvent(event="error", data=failure.model_dump(exclude_none=True))
