"""The answer chain: every stage in order, as one LangChain runnable that can also stream the reply.

screen → query → retrieve → triage → rewrite → compose → generate → guard → narrow → finish. A stage that
does not apply to a request (nothing to search for a refused question, no model to write with) is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, cast

from langchain_core.runnables import Runnable, RunnableConfig

from bot.contract import Answer
from bot.stages.base import Stage, StreamingStage
from bot.stages.finish import Finish, answer_deltas
from bot.stages.state import AnswerState

Piece = str | Answer
"""What streaming yields: pieces of reply text as they become final, then the whole ``Answer``."""


class AnswerChain(Runnable[AnswerState, Piece]):
    """Runs the stages on a request's state; ``stream`` yields the reply as it is settled, ``invoke`` the answer.

    Streaming is the one way the stages run (``invoke`` drains it), so a reply is the same whether it is read
    at once or piece by piece: the pieces are the reply's text, in order, each sent once, never taken back.
    ``Runnable.stream``'s default (chunks added up with ``+``) doesn't fit text pieces followed by an
    ``Answer``, so ``stream`` and ``invoke`` are the chain's own; callbacks passed in ``config`` (a tracer)
    still see one run.

    The stages are called directly: LangChain's ``RunnableSequence`` and ``RunnableLambda`` set up callback
    managers and inspect each function's signature on every call, which on a remembered question cost twice
    the stages' own work (3.2 ms against 1.1 ms an answer).
    """

    name = "answer"

    def __init__(self, stages: Sequence[Stage], finish: Finish) -> None:
        self.stages = tuple(stages)
        self.finish = finish
        # Decided once: an isinstance check against a runtime Protocol costs tens of µs, per stage, per answer.
        self._streaming = tuple(isinstance(stage, StreamingStage) for stage in self.stages)

    def _pieces(self, state: AnswerState) -> Iterator[Piece]:
        for stage, streaming in zip(self.stages, self._streaming, strict=True):
            if not stage.applies(state):
                continue
            started = time.perf_counter()
            if streaming:
                state = yield from cast(StreamingStage, stage).stream(state)
            else:
                state = stage.run(state)
            state.timings[stage.name] = round((time.perf_counter() - started) * 1000, 3)
        answer = self.finish.answer(state)
        yield from answer_deltas(answer.answer[len("".join(state.sent)) :])
        yield answer

    def run_through(self, state: AnswerState, last: str) -> AnswerState:
        """The state after the stages up to and including the one named ``last`` (for tools that study a stage)."""
        for stage in self.stages:
            if stage.applies(state):
                state = stage.run(state)
            if stage.name == last:
                return state
        raise ValueError(f"no stage is named {last!r}")

    def stream(self, input: AnswerState, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Piece]:
        """Yield the reply text in pieces as each becomes final, then the ``Answer`` (whose text they make up)."""
        if config and config.get("callbacks"):
            yield from self._transform_stream_with_config(iter([input]), self._traced, config)
        else:
            yield from self._pieces(input)

    def _traced(self, inputs: Iterator[AnswerState]) -> Iterator[Piece]:
        for state in inputs:
            yield from self._pieces(state)

    def invoke(self, input: AnswerState, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        """The answer (the stream drained)."""
        for piece in self.stream(input, config):
            if isinstance(piece, Answer):
                return piece
        raise RuntimeError("the answer chain ended without an answer")
