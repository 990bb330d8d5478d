import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.cache import CountingLRU


def test_get_or_compute_counts_hits_and_misses() -> None:
    cache: CountingLRU[int] = CountingLRU(2)
    assert cache.get_or_compute("a", lambda: 1) == 1
    assert cache.get_or_compute("a", lambda: 2) == 1
    assert (cache.hits, cache.misses, cache.hit_rate) == (1, 1, 0.5)


def test_get_or_fetch_many_fetches_only_the_missing_keys_in_one_call_and_keeps_the_order_asked() -> None:
    cache: CountingLRU[str] = CountingLRU(10)
    cache.put("b", "B")
    calls: list[list[str]] = []

    def fetch(keys: list[str]) -> dict[str, str]:
        calls.append(keys)
        return {key: key.upper() for key in keys if key != "gone"}

    assert cache.get_or_fetch_many(["c", "b", "gone", "a", "c"], fetch) == {"c": "C", "b": "B", "a": "A"}
    assert calls == [["c", "gone", "a"]]
    assert cache.get_or_fetch_many(["a", "b", "c"], fetch) == {"a": "A", "b": "B", "c": "C"}
    assert len(calls) == 1


def test_get_or_fetch_many_returns_every_value_even_when_more_than_the_cache_holds() -> None:
    cache: CountingLRU[int] = CountingLRU(3)
    found = cache.get_or_fetch_many(range(10), lambda keys: {key: key * key for key in keys})
    assert found == {key: key * key for key in range(10)}


def test_concurrent_callers_of_one_missing_key_compute_it_once() -> None:
    cache: CountingLRU[int] = CountingLRU(4)
    computing = threading.Event()
    release = threading.Event()
    calls = 0

    def slow() -> int:
        nonlocal calls
        calls += 1
        computing.set()
        release.wait(5)
        return 42

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(cache.get_or_compute, "question", slow)
        computing.wait(5)
        waiting = [pool.submit(cache.get_or_compute, "question", slow) for _ in range(3)]
        release.set()
        assert [f.result(5) for f in (first, *waiting)] == [42] * 4
    assert calls == 1 and (cache.misses, cache.hits) == (1, 3)


def test_a_failed_computation_lets_the_next_caller_try_again() -> None:
    cache: CountingLRU[int] = CountingLRU(4)

    def broken() -> int:
        raise ConnectionError("store down")

    with pytest.raises(ConnectionError):
        cache.get_or_compute("question", broken)
    assert cache.get_or_compute("question", lambda: 7) == 7
