"""Fakes at the seams, so unit tests of stages, the index and the server run in milliseconds.

Integration tests keep the real model, Chroma (a directory and a ``chroma run`` server) and the browser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bot.cache import CountingLRU
from bot.contract import Answer, Citation, Status
from bot.policy import DISCLAIMER
from bot.version import __version__

# -- embeddings and the vector store (bot.index) ------------------------------------------------------


# (filled in by the index work)


# -- the engine, as the server sees it (bot.server) ---------------------------------------------------


@dataclass
class FakeManifest:
    """The served index version, as ``/api/health`` reports it."""

    version: int = 1
    chunk_count: int = 3


@dataclass
class FakeIndex:
    manifest: FakeManifest = field(default_factory=FakeManifest)


def canned_answer(question: str) -> Answer:
    """An ``answered`` reply citing one passage and ending with the disclaimer, as the engine's do."""
    citation = Citation(n=1, chunk_id="c1", doc_id="d1", title="Leg press basics", section="Feet",
                        text="Place your feet shoulder-width apart.", quote="Place your feet shoulder-width apart.",
                        start=0, end=37)  # fmt: skip
    text = f"Place your feet shoulder-width apart [1].\n\n---\n\n{DISCLAIMER}"
    return Answer(question=question, status=Status.answered, answer=text, disclaimer=DISCLAIMER,
                  citations=[citation], timings_ms={"screen": 0.1, "total": 1.0})  # fmt: skip


class FakeEngine:
    """Exactly what the server uses of ``Engine`` (``bot.server.services.AnswerEngine``), answering in microseconds.

    Every question is answered with ``canned_answer``; ``stream`` yields its text in two pieces, then the
    answer. Set ``fail`` to have ``ask`` and ``stream`` raise it (``httpx.ConnectError`` is a lost Chroma
    server when the settings name one). Clear ``hold`` to make them wait, once started (``stream`` after
    its first piece), until it is set again: a busy answer slot.
    """

    composer = "extractive"

    def __init__(self) -> None:
        self.index = FakeIndex()
        self.caches: dict[str, CountingLRU[Any]] = {"retrieval": CountingLRU(8)}
        self.fail: BaseException | None = None
        self.hold = threading.Event()
        self.hold.set()
        #: The questions asked, in the order they started, with the history each came with.
        self.asked: list[tuple[str, list[Any]]] = []
        self.refreshes = 0
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return f"{__version__}+index.{self.index.manifest.version}"

    def refresh(self) -> bool:
        self.refreshes += 1
        return False

    def questions(self) -> list[str]:
        """The questions started so far."""
        with self._lock:
            return [question for question, _history in self.asked]

    def _start(self, question: str, history: Iterable[Any] | None) -> None:
        with self._lock:
            self.asked.append((question, list(history or [])))
        if self.fail is not None:
            raise self.fail

    def _wait(self) -> None:
        assert self.hold.wait(30), "the test never let the fake engine answer"

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        self._start(question, history)
        self._wait()
        return canned_answer(question)

    def stream(self, question: str, history: Iterable[Any] | None = None) -> Iterator[str | Answer]:
        self._start(question, history)
        answer = canned_answer(question)
        cut = answer.answer.index("\n\n---")
        yield answer.answer[:cut]
        self._wait()
        yield answer.answer[cut:]
        yield answer
