"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``, over the one request policy.

A chat-completions request carries the question and history ``/api/chat`` takes
(``ChatCompletionRequest.conversation``: system prompts are read by nothing) and is admitted, queued and
answered through ``answering`` as ``/api/chat`` is, so its reply's text is that answer's text, ``[n]``
markers and disclaimer included; the ``coach`` field carries the status, citations and passages.
``stream: true`` sends ``chat.completion.chunk`` events: the role, the pieces of the text as the engine
yields them, a chunk ending the reply with ``finish_reason`` and ``coach`` (with ``include_usage``, one more
with the counts), then ``data: [DONE]``. A failure once streaming is an event with the error body, then
``[DONE]``. A chat front-end's housekeeping request (``housekeeping``) is answered at once with its neutral
reply, counted against no limit. Every error is in OpenAI's shape (``errors``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException

from bot import policy
from bot.contract import Answer, Message
from bot.observability import current_request_id, request_fields
from bot.server import answering
from bot.server.errors import ClientProblem, openai_error, refusal
from bot.server.housekeeping import housekeeping_reply
from bot.server.openai_schemas import (
    OPENAI_ERRORS,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChunkChoice,
    Coach,
    Delta,
    Model,
    ModelList,
    Usage,
)
from bot.server.services import Loaded, Services, get_services
from bot.server.usage import TokenCounter

log = logging.getLogger("bot.server.routes.openai")

router = APIRouter(prefix="/v1", responses=OPENAI_ERRORS, tags=["openai"])

#: The model's ``created``: when this server started.
_STARTED = int(time.time())
#: A stream must reach the client piece by piece, through any proxy.
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_DONE = b"data: [DONE]\n\n"
_STREAM_DOC = {
    "content": {"text/event-stream": {}},
    "description": "`stream: false`: the completion. `stream: true`: `chat.completion.chunk` events (`data: {...}`, "
    "the fields of `ChatCompletion` with `delta` for `message`; `coach` on the chunk whose `finish_reason` is "
    "`stop`), then `data: [DONE]`.",
}


def _model() -> Model:
    return Model(id=policy.MODEL_ID, created=_STARTED, owned_by=policy.MODEL_OWNER)


def _check_model(name: str) -> None:
    if name != policy.MODEL_ID:
        raise ClientProblem(404, "model_not_found", policy.model_not_found(name), param="model")


@router.get("/models", response_model=ModelList)
async def models(_key: str | None = Depends(answering.api_key)) -> ModelList:
    """The models this server answers with: the coach, as `knee-coach`."""
    return ModelList(data=[_model()])


@router.get("/models/{name}", response_model=Model)
async def model(name: str, _key: str | None = Depends(answering.api_key)) -> Model:
    """The coach's model entry (any other name: `404 model_not_found`)."""
    _check_model(name)
    return _model()


@router.post("/chat/completions", response_model=ChatCompletion, responses={200: _STREAM_DOC})
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    services: Services = Depends(get_services),  # noqa: B008 - FastAPI idiom
    key: str | None = Depends(answering.api_key),
) -> Response:
    """Answer the conversation's last user message: the same reply as `POST /api/chat`, in OpenAI's shape.

    The text is the answer with its `[n]` markers and the medical disclaimer; `coach` carries the status,
    citations and passages (on the last chunk when streaming). System messages are accepted and change
    nothing. `usage` counts tokens with the embedding model's tokenizer.
    """
    _check_model(body.model)
    question, history = body.conversation()
    canned = housekeeping_reply(question)
    if canned is not None:  # before admitting: counted against no limit, and needs no answer slot
        fields = request_fields()
        if fields is not None:
            fields.update(answer_status="housekeeping")
        reply, coach = _Reply.start(services, body.messages), Coach(status="housekeeping", disclaimer=policy.DISCLAIMER)
        if body.stream:
            return _streaming(_canned_events(reply, canned, coach, include_usage=body.include_usage))
        return _json(reply.completion(canned, coach))
    loaded = answering.admit_keyed(services, request, key=key, user=body.user)
    reply = _Reply.start(services, body.messages)  # once admitted: a refused request costs no counting
    if body.stream:
        return _streaming(_events(services, loaded, question, history, reply, include_usage=body.include_usage))
    answer = await answering.answer(services, loaded, question, history)
    return _json(reply.completion(answer.answer, _coach(answer)))


def _coach(answer: Answer) -> Coach:
    return Coach(status=answer.status, reason=answer.reason, disclaimer=answer.disclaimer,
                 citations=answer.citations, passages=answer.passages)  # fmt: skip


def _json(completion: ChatCompletion) -> Response:
    return Response(completion.model_dump_json(), media_type="application/json")


def _streaming(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=_STREAM_HEADERS)


def _sse(data: str) -> bytes:
    return b"data: " + data.encode("utf-8") + b"\n\n"


@dataclass(frozen=True)
class _Reply:
    """What every part of one reply shares: its id, time, engine version and the prompt's token count."""

    id: str
    created: int
    fingerprint: str | None
    prompt_tokens: int
    tokens: TokenCounter

    @classmethod
    def start(cls, services: Services, messages: Iterable[ChatMessage]) -> _Reply:
        engine = services.engine
        return cls(id=f"chatcmpl-{current_request_id() or uuid.uuid4().hex}", created=int(time.time()),
                   fingerprint=engine.version if engine is not None else None,
                   prompt_tokens=services.tokens.count(*(message.text for message in messages)),
                   tokens=services.tokens)  # fmt: skip

    def usage(self, text: str) -> Usage:
        completion = self.tokens.count(text)
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=completion,
                     total_tokens=self.prompt_tokens + completion)  # fmt: skip

    def completion(self, text: str, coach: Coach) -> ChatCompletion:
        return ChatCompletion(id=self.id, created=self.created, model=policy.MODEL_ID,
                              system_fingerprint=self.fingerprint, usage=self.usage(text), coach=coach,
                              choices=[Choice(message=AssistantMessage(content=text))])  # fmt: skip

    def chunk(self, delta: Delta, *, ends: bool = False, coach: Coach | None = None) -> bytes:
        choice = ChunkChoice(delta=delta, finish_reason="stop" if ends else None)
        return self._event(choices=[choice], coach=coach)

    def ending(self, text: str, coach: Coach, *, include_usage: bool) -> list[bytes]:
        """The chunk that ends the reply, and with ``include_usage`` the usage chunk after it."""
        events = [self.chunk(Delta(), ends=True, coach=coach)]
        if include_usage:
            events.append(self._event(choices=[], usage=self.usage(text)))
        return events

    def _event(self, *, choices: list[ChunkChoice], coach: Coach | None = None, usage: Usage | None = None) -> bytes:
        chunk = ChatCompletionChunk(id=self.id, created=self.created, model=policy.MODEL_ID,
                                    system_fingerprint=self.fingerprint, choices=choices, coach=coach,
                                    usage=usage)  # fmt: skip
        return _sse(chunk.model_dump_json())


async def _events(services: Services, loaded: Loaded, question: str, history: list[Message], reply: _Reply, *,
                  include_usage: bool) -> AsyncIterator[bytes]:  # fmt: skip
    """The answer as chunks; its answer slot is held until the answer is complete (``answering.stream``)."""
    yield reply.chunk(Delta(role="assistant", content=""))
    try:
        async with aclosing(answering.stream(services, loaded, question, history)) as pieces:
            async for piece in pieces:
                if isinstance(piece, Answer):
                    for event in reply.ending(piece.answer, _coach(piece), include_usage=include_usage):
                        yield event
                else:
                    yield reply.chunk(Delta(content=piece))
    except Exception as error:
        refused = refusal(error)
        if refused is None:
            log.exception("streaming a chat completion failed")
        if refused is not None:
            yield _sse(refused.openai_body().model_dump_json())
        else:
            yield _sse(openai_error(500, "internal_error", policy.INTERNAL_ERROR).model_dump_json())
    yield _DONE


async def _canned_events(reply: _Reply, text: str, coach: Coach, *, include_usage: bool) -> AsyncIterator[bytes]:
    yield reply.chunk(Delta(role="assistant", content=""))
    yield reply.chunk(Delta(content=text))
    for event in reply.ending(text, coach, include_usage=include_usage):
        yield event
    yield _DONE


#: Registered after the routes above: any other ``/v1`` path is an OpenAI-style 404 (or 405 for a known path).
fallback = APIRouter(prefix="/v1")
_METHODS = {"/v1/chat/completions": "POST", "/v1/models": "GET"}


@fallback.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def unknown(path: str, request: Request) -> None:
    """Anything else under /v1: not the chat page, but an error a chat client can read."""
    allowed = _METHODS.get(request.url.path.rstrip("/"))
    if allowed is not None:
        raise HTTPException(405, headers={"Allow": allowed})
    raise HTTPException(404)
