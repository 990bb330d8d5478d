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
