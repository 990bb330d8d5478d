"""Micro-batching: questions asked at the same time are embedded in one call of the model.

One thread runs the model. A caller puts its texts on a bounded queue and waits for their vectors; the thread
takes what is queued, and while other answers are in progress (``active``) waits up to ``window`` for more,
up to ``max_batch`` texts, then embeds them all in one call and hands each caller its own rows. A question
asked alone is never delayed (nobody else could join it), and none waits beyond the window. When the queue is
full, callers block: the back-pressure reaches the answer slots that hold them. A caller that stops waiting
(its request cancelled) has its texts dropped if they were not embedded yet.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings
from prometheus_client import Counter, Histogram

BATCH_SIZE = Histogram("bot_embed_batch_size", "Questions embedded together (a micro-batch).",
                       buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64))  # fmt: skip
QUEUE_WAIT = Histogram("bot_embed_queue_wait_seconds", "Time a question waited for its embedding call to start.",
                       buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5))  # fmt: skip
CANCELLED = Counter("bot_embed_cancelled", "Embedding requests dropped because their caller stopped waiting.")

#: How often a waiting caller looks whether its request was cancelled (an anyio worker thread's task).
_CANCEL_CHECK_SECONDS = 0.005


@dataclass(frozen=True)
class BatchSettings:
    """How questions are batched."""

    #: Seconds the first question of a batch may wait for others (only while other answers are in progress).
    window: float = 0.001
    #: Most texts in one call of the model.
    max_batch: int = 16
    #: Requests waiting at most; more callers block until there is room.
    max_queued: int = 64

    def __post_init__(self) -> None:
        if not 0 <= self.window <= 0.1 or self.max_batch < 1 or self.max_queued < 1:
            raise ValueError(f"invalid batching settings: {self}")


@dataclass
class _Request:
    texts: list[str]
    future: Future[list[list[float]]] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """What the batcher has done so far (the metrics hold the distributions)."""

    calls: int = 0
    #: Calls made in the caller's own thread (it was alone).
    inline: int = 0
    texts: int = 0
    largest: int = 0
    cancelled: int = 0


class MicroBatcher(Embeddings):
    """Embeds questions from many threads in shared calls of ``inner``; passages (``embed_documents``) go straight."""

    def __init__(self, inner: Embeddings, settings: BatchSettings | None = None) -> None:
        self.inner = inner
        self.settings = settings or BatchSettings()
        self.stats = BatchStats()
        self._queue: queue.Queue[_Request] = queue.Queue(maxsize=self.settings.max_queued)
        self._carry: _Request | None = None
        self._active = 0
        self._running = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- callers ---------------------------------------------------------------------------------------

    @contextmanager
    def active(self) -> Iterator[None]:
        """Mark an answer in progress: while others are, a batch waits (up to the window) for their questions."""
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1

    def submit(self, texts: list[str]) -> Future[list[list[float]]]:
        """Queue ``texts`` (blocking while the queue is full); the future of their vectors, in order."""
        self._start()
        request = _Request(list(texts))
        self._queue.put(request)
        return request.future

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """The vectors of ``texts``, embedded together with whatever else is asked at the same time."""
        if not texts:
            return []
        if self._alone():  # nobody to batch with: no thread hop either
            return self._inline(texts)
        future = self.submit(texts)
        try:
            return _wait(future)
        except BaseException:
            if future.cancel():
                self._cancelled()
            raise

    async def aembed_queries(self, texts: list[str]) -> list[list[float]]:
        """``embed_queries`` for asyncio code: cancelling the awaiting task drops the request if not yet embedded."""
        future = self.submit(texts)  # the queue holds 64 requests: a put blocks only when far behind
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if future.cancelled():
                self._cancelled()
            raise

    def embed_query(self, text: str) -> list[float]:
        """One question's vector (batched with others asked at the same time)."""
        return self.embed_queries([text])[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Passages: already one large call, so they go to the model directly."""
        return self.inner.embed_documents(texts)

    def _alone(self) -> bool:
        """No other answer in progress, nothing queued, no batch running: embedding now in this thread is best."""
        return self._active <= 1 and not self._running and self._queue.empty() and self._carry is None

    def _inline(self, texts: list[str]) -> list[list[float]]:
        BATCH_SIZE.observe(len(texts))
        QUEUE_WAIT.observe(0.0)
        with self._lock:
            self.stats.calls += 1
            self.stats.inline += 1
            self.stats.texts += len(texts)
            self.stats.largest = max(self.stats.largest, len(texts))
        return self._embed_many(texts)

    def _embed_many(self, texts: list[str]) -> list[list[float]]:
        """One call of the model for questions: its own ``embed_queries`` if it has one (grouping by length)."""
        embed_many = getattr(self.inner, "embed_queries", None)
        return embed_many(texts) if callable(embed_many) else self.inner.embed_documents(texts)

    def _cancelled(self) -> None:
        with self._lock:
            self.stats.cancelled += 1
        CANCELLED.inc()

    # -- the model's thread ----------------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name="embed-batcher", daemon=True)
                    self._thread.start()

    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            self._running = True
            try:
                self._embed(batch)
            finally:
                self._running = False

    def _next_batch(self) -> list[_Request]:
        first = self._carry or self._queue.get()
        self._carry = None
        batch, size = [first], len(first.texts)
        deadline = first.queued_at + self.settings.window
        while size < self.settings.max_batch:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._active <= len(batch):  # nobody else could still join
                    break
                try:
                    request = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if size + len(request.texts) > self.settings.max_batch:
                self._carry = request  # it starts the next batch
                break
            batch.append(request)
            size += len(request.texts)
        return batch

    def _embed(self, batch: list[_Request]) -> None:
        live = [r for r in batch if r.future.set_running_or_notify_cancel()]
        if not live:
            return
        texts = [text for r in live for text in r.texts]
        started = time.perf_counter()
        for r in live:
            QUEUE_WAIT.observe(started - r.queued_at)
        BATCH_SIZE.observe(len(texts))
        with self._lock:
            self.stats.calls += 1
            self.stats.texts += len(texts)
            self.stats.largest = max(self.stats.largest, len(texts))
        try:
            vectors = self._embed_many(texts)
        except BaseException as error:  # every caller gets the model's error
            for r in live:
                r.future.set_exception(error)
            return
        at = 0
        for r in live:
            r.future.set_result(vectors[at : at + len(r.texts)])
            at += len(r.texts)


def _wait(future: Future[list[list[float]]]) -> list[list[float]]:
    """The future's result; in an anyio worker thread, stop waiting (cancelled) when its request is cancelled."""
    try:
        from anyio.from_thread import check_cancelled

        check_cancelled()
    except (ImportError, RuntimeError):  # not a worker thread of an event loop: nothing can cancel it
        return future.result()
    while True:
        try:
            return future.result(timeout=_CANCEL_CHECK_SECONDS)
        except FutureTimeout:
            check_cancelled()  # raises the event loop's cancellation if the request was cancelled


def batcher_of(embeddings: Embeddings) -> MicroBatcher | None:
    """The ``MicroBatcher`` inside ``embeddings`` (wrapped by a cache, say), if there is one."""
    found: object = embeddings
    for _ in range(4):
        if isinstance(found, MicroBatcher):
            return found
        found = getattr(found, "inner", None)
    return None
