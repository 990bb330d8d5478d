"""Askers for a running coach: each route's reply turned back into the ``Answer`` that ``Engine.ask`` returns.

The runner's ``Asker`` protocol is the seam: ``RemoteAsker`` answers over ``POST /api/chat`` or a whole chat
completion, ``StreamingRemoteAsker`` over ``POST /api/chat/stream`` (the widget's route, the default) or a
streamed chat completion, and also has ``stream``, so the runner times the first piece as the member sees it.
A stream's pieces must make up the answer's text exactly; a reply that doesn't fails its case.

A chat completion carries no ``question``, ``timings_ms`` or guard fields: the ``Answer`` is rebuilt from its
text and the ``coach`` extension (status, reason, disclaimer, citations, passages), which is everything the
metrics and the answer-by-answer comparison read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import Any

from pydantic import ValidationError

from bot.contract import Answer
from bot.evaluate.remote.connection import Connection, ReplyError
from bot.evaluate.remote.health import ServerHealth, version_warning
from bot.policy import MODEL_ID


class Route(str, Enum):
    """The public API a remote run asks through."""

    stream = "stream"
    chat = "chat"
    openai_stream = "openai-stream"
    openai = "openai"

    @classmethod
    def choose(cls, *, openai: bool, stream: bool) -> Route:
        """The route ``--openai`` / ``--no-stream`` select."""
        if openai:
            return cls.openai_stream if stream else cls.openai
        return cls.stream if stream else cls.chat

    @property
    def path(self) -> str:
        """The route's path under the server's address."""
        return {Route.stream: "/api/chat/stream", Route.chat: "/api/chat"}.get(self, "/v1/chat/completions")

    @property
    def streams(self) -> bool:
        """Whether the reply comes as server-sent events."""
        return self in {Route.stream, Route.openai_stream}

    def describe(self) -> str:
        """``POST /v1/chat/completions (stream: true)`` and the like, for the report's header."""
        if self in {Route.openai, Route.openai_stream}:
            return f"POST {self.path} (stream: {str(self.streams).lower()})"
        return f"POST {self.path}"


def _turns(history: Iterable[Any] | None) -> list[dict[str, str]]:
    """The conversation as the API takes it: ``{"role", "content"}`` dicts (``Message`` objects too)."""
    turns = []
    for turn in history or []:
        data = turn.model_dump() if hasattr(turn, "model_dump") else turn
        turns.append({"role": str(data["role"]), "content": str(data["content"])})
    return turns


def _json(data: str | bytes, what: str) -> dict[str, Any]:
    try:
        found = json.loads(data)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        raise ReplyError(f"{what} is not a JSON object: {data[:80]!r}")
    return found


def _validated(data: dict[str, Any] | str | bytes, what: str) -> Answer:
    try:
        return Answer.model_validate_json(data) if isinstance(data, str | bytes) else Answer.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        raise ReplyError(f"{what} is not the coach's answer ({where}: {first['msg']})") from None


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Server-sent events as ``(event, data)``: ``event`` is ``message`` when unnamed; comments are skipped."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _colon, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)


class RemoteAsker:
    """Asks the coach at ``connection`` over a route that answers whole (``/api/chat``, a whole completion)."""

    #: Why a requested composer isn't used: never, here (the server composes with its own, ``BOT_COMPOSER``).
    composer_problem: str | None = None

    def __init__(self, connection: Connection, health: ServerHealth, route: Route) -> None:
        self.connection = connection
        self.health = health
        self.route = route
        self.composer = health.composer or "unknown"

    def with_composer(self, spec: str) -> RemoteAsker:
        """Itself: the server answers with the composer it was started with."""
        return self

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        """The server's answer to ``question`` after ``history``, as ``Engine.ask`` returns it."""
        turns = _turns(history)
        if self.route is Route.chat:
            response = self.connection.post(self.route.path, {"message": question, "history": turns})
            return _validated(response.content, f"the reply of POST {self.route.path}")
        response = self.connection.post(self.route.path, self._completion_request(question, turns))
        body = _json(response.content, "the chat completion")
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ReplyError("the chat completion has no choices[0].message.content") from None
        return self._from_completion(question, text, body.get("coach"))

    def describe(self) -> dict[str, Any]:
        """Where the answers came from, for the report's header: address, route, health, waits, version."""
        return {
            "url": self.connection.options.url,
            "route": self.route.describe(),
            "health": self.health.to_dict(),
            "waits": self.connection.wait_summary(),
            "version_warning": version_warning(self.health),
        }

    def _completion_request(self, question: str, turns: list[dict[str, str]]) -> dict[str, Any]:
        messages = [*turns, {"role": "user", "content": question}]
        return {"model": MODEL_ID, "messages": messages, "stream": self.route.streams}

    def _from_completion(self, question: str, text: object, coach: object) -> Answer:
        """The ``Answer`` a completion stands for: its text, and the rest from the ``coach`` extension."""
        if not isinstance(coach, dict):
            raise ReplyError("the chat completion has no coach field (is a proxy or another server answering?)")
        return _validated({"question": question, "answer": text, "composer": self.composer,
                           **{key: coach.get(key) for key in ("status", "reason", "disclaimer")},
                           "citations": coach.get("citations") or [], "passages": coach.get("passages") or []},
                          "the chat completion")  # fmt: skip


class StreamingRemoteAsker(RemoteAsker):
    """Asks over a streaming route (``/api/chat/stream``, a streamed completion): pieces, then the ``Answer``."""

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        """The streamed answer, once complete."""
        for piece in self.stream(question, history):
            if isinstance(piece, Answer):
                return piece
        raise ReplyError("the stream ended without an answer")  # pragma: no cover - stream() raises first

    def stream(self, question: str, history: Iterable[Any] | None = None) -> Iterator[str | Answer]:
        """Like ``Engine.stream``: the reply's text in pieces as they arrive, then the ``Answer``."""
        turns = _turns(history)
        if self.route is Route.stream:
            yield from self._coach_events(question, turns)
        else:
            yield from self._completion_chunks(question, turns)

    def _coach_events(self, question: str, turns: list[dict[str, str]]) -> Iterator[str | Answer]:
        pieces: list[str] = []
        lines = self.connection.lines(self.route.path, {"message": question, "history": turns})
        for event, data in sse_events(lines):
            if event == "delta":
                piece = _json(data, "a delta event").get("text")
                if not isinstance(piece, str):
                    raise ReplyError(f"a delta event without text: {data[:80]!r}")
                pieces.append(piece)
                yield piece
            elif event == "answer":
                yield self._whole(_validated(data, "the answer event"), pieces)
                return
            elif event == "error":
                body = _json(data, "the error event")
                raise ReplyError(f"the stream ended with an error event: {body.get('error')}: {body.get('message')}")
        raise ReplyError(f"POST {self.route.path} ended without an answer event")

    def _completion_chunks(self, question: str, turns: list[dict[str, str]]) -> Iterator[str | Answer]:
        pieces: list[str] = []
        coach = None
        lines = self.connection.lines(self.route.path, self._completion_request(question, turns))
        for _event, data in sse_events(lines):
            if data == "[DONE]":
                yield self._whole(self._from_completion(question, "".join(pieces), coach), pieces)
                return
            chunk = _json(data, "a chat completion chunk")
            if isinstance(chunk.get("error"), dict):
                error = chunk["error"]
                raise ReplyError(f"the stream ended with an error: {error.get('code')}: {error.get('message')}")
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    pieces.append(piece)
                    yield piece
            coach = chunk.get("coach") or coach
        raise ReplyError(f"POST {self.route.path} ended without data: [DONE]")

    @staticmethod
    def _whole(answer: Answer, pieces: list[str]) -> Answer:
        """The answer, once its streamed pieces are checked to make up its text (what the member read)."""
        if "".join(pieces) != answer.answer:
            raise ReplyError("the streamed pieces do not make up the answer's text (is a proxy rewriting the stream?)")
        return answer


def remote_asker(connection: Connection, health: ServerHealth, route: Route) -> RemoteAsker:
    """The asker for ``route``: streaming routes get ``stream`` too."""
    return (StreamingRemoteAsker if route.streams else RemoteAsker)(connection, health, route)
