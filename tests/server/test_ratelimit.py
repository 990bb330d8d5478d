"""Each client has its own rate limit; each embedding site has a daily cap."""

from __future__ import annotations

import pytest

from bot.server.ratelimit import RateLimited, RateLimiter


def test_a_client_over_its_limit_is_told_when_to_retry() -> None:
    limiter = RateLimiter("3/minute", daily_cap_per_origin=0)
    for _ in range(3):
        limiter.hit("10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("10.0.0.1")
    assert refused.value.scope == "client" and 1 <= refused.value.retry_after <= 60
    limiter.hit("10.0.0.2")  # another client is unaffected


def test_an_embedding_site_has_a_daily_cap_across_its_visitors() -> None:
    limiter = RateLimiter("100/minute", daily_cap_per_origin=2)
    limiter.hit("a", "https://gym.example")
    limiter.hit("b", "https://gym.example")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("c", "https://gym.example")
    assert refused.value.scope == "origin" and "today" in refused.value.message
    limiter.hit("c", "https://other-gym.example")
    limiter.hit("c")  # the bot's own page has no site cap


def test_a_refused_request_does_not_use_up_the_allowance() -> None:
    limiter = RateLimiter("2/minute", daily_cap_per_origin=1)
    limiter.hit("a", "https://gym.example")
    with pytest.raises(RateLimited):
        limiter.hit("a", "https://gym.example")  # refused by the site cap …
    limiter.hit("a")  # … so the client still has one left


def test_counting_in_memory_starts_no_thread_and_still_drops_expired_counts() -> None:
    import threading
    import time

    from limits import parse
    from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

    from bot.server.counting import MemoryCounts

    now = [0.0]
    storage = MemoryCounts(sweep_seconds=1.0, clock=lambda: now[0])
    before = threading.active_count()
    sliding, fixed = SlidingWindowCounterRateLimiter(storage), FixedWindowRateLimiter(storage)
    item = parse("2/second")
    assert sliding.hit(item, "client", "a") and sliding.hit(item, "client", "a")
    assert not sliding.hit(item, "client", "a")  # the same limits as limits' own MemoryStorage
    assert fixed.hit(item, "origin", "b")
    assert threading.active_count() == before  # no timer thread per count (limits' own: one every 10 ms)
    assert storage.storage  # counted
    time.sleep(2.1)  # every window above has expired…
    now[0] = 5.0  # … and a sweep is due: the next count drops them
    fixed.hit(parse("5/hour"), "origin", "c")
    assert set(storage.storage) == {key for key in storage.storage if "c" in key}
    assert storage.expirations and all("c" in key for key in storage.expirations)
