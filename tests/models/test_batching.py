"""Micro-batching: every caller gets its own vectors, whatever the concurrency; lone questions never wait."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models.batching import BatchSettings, MicroBatcher, batcher_of
from bot.models.embedding import CachedEmbeddings
from tests.fakes import HashEmbeddings


class RecordingEmbeddings(HashEmbeddings):
    """Hash vectors, remembering each call's texts; ``gate`` (when set) holds every call until it opens."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        self.gate = gate
        self.started = threading.Event()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        return super().embed_documents(texts)


words = st.text(alphabet="abcdefgh ", min_size=0, max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    requests=st.lists(st.lists(words, min_size=1, max_size=5), min_size=1, max_size=40),
    window=st.sampled_from([0.0, 0.0005, 0.002]),
    max_batch=st.integers(1, 16),
    threads=st.integers(1, 12),
)
def test_every_caller_gets_its_own_vectors_in_order(requests, window, max_batch, threads) -> None:  # fmt: skip
    inner = RecordingEmbeddings()
    batcher = MicroBatcher(inner, BatchSettings(window=window, max_batch=max_batch, max_queued=4))

    def ask(texts: list[str]) -> list[list[float]]:
        with batcher.active():
            return batcher.embed_queries(texts)

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(ask, requests))
    for texts, vectors in zip(requests, results, strict=True):
        assert vectors == [inner._vector(t) for t in texts]  # none lost, none swapped
    embedded = sorted(t for call in inner.calls for t in call)
    assert embedded == sorted(t for texts in requests for t in texts)  # each text embedded exactly once
    assert all(len(call) <= max(max_batch, 5) for call in inner.calls)  # a request is never split
    assert all(len(call) <= max_batch for call in inner.calls if len(call) > 5)


def test_batched_real_vectors_equal_single_ones(embeddings) -> None:
    from tests.models.test_onnx_encoder import texts

    batcher = MicroBatcher(embeddings.inner, BatchSettings(window=0.002, max_batch=8))
    questions = texts()[40:80]

    def ask(text: str) -> list[float]:
        with batcher.active():
            return batcher.embed_query(text)

    with ThreadPoolExecutor(8) as pool:
        batched = np.array(list(pool.map(ask, questions)))
    single = np.array([embeddings.inner.embed_query(q) for q in questions])
    assert np.abs(batched - single).max() < 1e-5
    assert batcher.stats.calls < len(questions)  # some did share a call


def test_a_lone_question_is_not_delayed() -> None:
    batcher = MicroBatcher(RecordingEmbeddings(), BatchSettings(window=0.1, max_batch=16))
    batcher.embed_query("warm up")
    started = time.perf_counter()
    with batcher.active():  # the only answer in progress: nobody could join it
        batcher.embed_query("knee")
    assert time.perf_counter() - started < 0.05


def test_questions_asked_together_share_one_call() -> None:
    inner = RecordingEmbeddings()
    batcher = MicroBatcher(inner, BatchSettings(window=0.1, max_batch=2))
    barrier = threading.Barrier(2)

    def ask(text: str) -> list[float]:
        with batcher.active():
            barrier.wait()
            return batcher.embed_query(text)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(ask, ["left knee", "right knee"]))
    assert sorted(map(sorted, inner.calls)) == [["left knee", "right knee"]]


def test_a_cancelled_request_is_dropped_before_the_model_sees_it() -> None:
    gate = threading.Event()
    inner = RecordingEmbeddings(gate)
    batcher = MicroBatcher(inner, BatchSettings(window=0.0))
    first = batcher.submit(["first"])
    assert inner.started.wait(5)  # the model is busy with "first"
    second, third = batcher.submit(["second"]), batcher.submit(["third"])
    assert second.cancel()
    gate.set()
    assert third.result(5) and first.result(5)
    assert inner.calls == [["first"], ["third"]]


def test_an_awaiting_task_cancelled_drops_its_request() -> None:
    gate = threading.Event()
    inner = RecordingEmbeddings(gate)
    batcher = MicroBatcher(inner, BatchSettings(window=0.0))

    async def main() -> None:
        busy = batcher.submit(["busy"])
        assert await asyncio.to_thread(inner.started.wait, 5)
        waiting = asyncio.ensure_future(batcher.aembed_queries(["gone"]))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.set()
        await asyncio.wrap_future(busy)

    asyncio.run(main())
    assert inner.calls == [["busy"]] and batcher.stats.cancelled == 1


def test_a_full_queue_holds_the_caller_back() -> None:
    gate = threading.Event()
    inner = RecordingEmbeddings(gate)
    batcher = MicroBatcher(inner, BatchSettings(window=0.0, max_queued=1))
    batcher.submit(["running"])
    assert inner.started.wait(5)
    batcher.submit(["queued"])  # fills the queue
    third = threading.Thread(target=batcher.submit, args=(["held back"],), daemon=True)
    third.start()
    third.join(0.2)
    assert third.is_alive()  # blocked until there is room
    gate.set()
    third.join(5)
    assert not third.is_alive()


def test_a_model_error_reaches_every_caller_of_the_batch() -> None:
    class Broken(HashEmbeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise RuntimeError("model broke")

    batcher = MicroBatcher(Broken())
    with pytest.raises(RuntimeError, match="model broke"):
        batcher.embed_query("knee")
    assert batcher.embed_documents == batcher.embed_documents  # still usable: the thread survived
    with pytest.raises(RuntimeError, match="model broke"):
        batcher.embed_query("again")


def test_the_cache_sends_only_new_questions_in_one_call() -> None:
    inner = RecordingEmbeddings()
    cached = CachedEmbeddings(MicroBatcher(inner), name="hash")
    cached.embed_query("seen")
    vectors = cached.embed_queries(["seen", "new one", "new two", "new one"])
    assert inner.calls == [["seen"], ["new one", "new two"]]
    assert vectors[1] == vectors[3] == inner._vector("new one")
    assert batcher_of(cached) is cached.inner and batcher_of(inner) is None


@pytest.mark.parametrize("bad", [{"window": -1}, {"window": 1.0}, {"max_batch": 0}, {"max_queued": 0}])
def test_batch_settings_are_checked(bad) -> None:
    with pytest.raises(ValueError):
        BatchSettings(**bad)


def test_batch_sizes_and_queue_waits_are_metrics() -> None:
    from prometheus_client import REGISTRY

    def count(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    calls, waits = count("bot_embed_batch_size_count"), count("bot_embed_queue_wait_seconds_count")
    texts = count("bot_embed_batch_size_sum")
    batcher = MicroBatcher(RecordingEmbeddings())
    batcher.embed_queries(["one", "two", "three"])  # alone: in this thread
    batcher.submit(["queued"]).result(5)  # through the batcher's thread
    assert count("bot_embed_batch_size_count") == calls + 2 and count("bot_embed_batch_size_sum") == texts + 4
    assert count("bot_embed_queue_wait_seconds_count") == waits + 2
