"""The shape of a stage: a name, when it applies, and one ``run`` from state to state."""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol, runtime_checkable

from bot.stages.state import AnswerState


@runtime_checkable
class Stage(Protocol):
    """One step of answering. Dependencies are given to ``__init__``; ``run`` does the step's one job."""

    #: The stage's name in ``Answer.timings_ms`` and the metrics.
    name: str

    def applies(self, state: AnswerState) -> bool:
        """Whether this request needs the step (a refused question is never composed from passages)."""
        ...

    def run(self, state: AnswerState) -> AnswerState:
        """Do the step."""
        ...


@runtime_checkable
class StreamingStage(Stage, Protocol):
    """A stage that produces reply text gradually (a chat model writing): it yields each piece as it is final."""

    def stream(self, state: AnswerState) -> Generator[str, None, AnswerState]:
        """Yield the pieces of reply text this step settles, then return the state."""
        ...
