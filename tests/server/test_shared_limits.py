"""The limits and caps counted in a real Redis server shared by several limiters (workers, instances)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import SecretStr

from bot.server.counting import Counters
from bot.server.metrics import exposition
from bot.server.ratelimit import RateLimited, RateLimiter
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


def _limiter(url: str, rule: str = "5/minute", cap: int = 0, **options: Any) -> RateLimiter:
    return RateLimiter(rule, daily_cap_per_origin=cap, counters=Counters(SecretStr(url), **options))


def _allowed(hit: Callable[[], None], tries: int) -> int:
    allowed = 0
    for _ in range(tries):
        try:
            hit()
            allowed += 1
        except RateLimited:
            pass
    return allowed


def test_two_limiters_sharing_redis_give_a_client_its_limit_once(redis_server: RedisServer) -> None:
    first, second = _limiter(redis_server.url), _limiter(redis_server.url)
    assert first.counters.state == "redis"
    allowed = sum(_allowed(lambda limiter=limiter: limiter.hit("10.0.0.1"), 10) for limiter in (first, second))
    assert allowed == 5  # not 5 per limiter
    with pytest.raises(RateLimited) as refused:
        first.hit("10.0.0.1")
    assert refused.value.scope == "client" and 1 <= refused.value.retry_after <= 60
    second.hit("10.0.0.2")  # another client has its own allowance
    memory = RateLimiter("5/minute", daily_cap_per_origin=0)  # the default still counts per process
    assert memory.counters.state == "memory" and _allowed(lambda: memory.hit("10.0.0.1"), 10) == 5


def test_concurrent_requests_through_two_limiters_never_get_more_than_the_limit(redis_server: RedisServer) -> None:
    def admitted(rule: str, cap: int, client: Callable[[int], str], requests: int) -> int:
        limiters = [_limiter(redis_server.url, rule, cap=cap) for _ in range(2)]

        def one(i: int) -> int:
            return _allowed(lambda: limiters[i % 2].hit(client(i), "https://gym.example"), 1)

        with ThreadPoolExecutor(max_workers=16) as pool:
            return sum(pool.map(one, range(requests)))

    assert admitted("50/minute", 0, lambda i: "10.0.0.9", 400) == 50  # one client's limit
    assert admitted("1000/minute", 1000, lambda i: "10.0.0.8", 400) == 100  # its share of a site's cap
    assert admitted("1000/minute", 400, lambda i: f"c{i}", 800) == 400  # the site's cap, across its visitors


def test_a_sites_daily_cap_is_shared_across_limiters(redis_server: RedisServer) -> None:
    limiters = [_limiter(redis_server.url, "100/minute", cap=20) for _ in range(2)]
    allowed = sum(
        _allowed(lambda limiter=limiter, n=n, i=i: limiter.hit(f"client-{n}-{i}", "https://gym.example"), 1)
        for n, limiter in enumerate(limiters)
        for i in range(15)
    )
    assert allowed == 20


def test_an_unreachable_redis_is_counted_in_memory_then_redis_again_when_back(redis_server: RedisServer) -> None:
    limiter = _limiter(redis_server.url, "1000/minute", recheck_seconds=0.5)
    limiter.hit("a")
    redis_server.stop()
    started = time.monotonic()
    limiter.hit("a")  # still admitted: counted in memory
    assert limiter.counters.state == "degraded"
    assert time.monotonic() - started < 2
    redis_server.start()
    time.sleep(0.6)
    limiter.hit("a")
    assert limiter.counters.state == "redis"


def test_a_redis_url_with_a_password_is_not_logged(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    url = redis_server.url.replace("redis://", "redis://user:hunter2@")
    limiter = _limiter(url)
    limiter.hit("a")  # refused login (no such user) counts as unreachable: answered all the same
    redis_server.stop()
    limiter.hit("a")
    assert limiter.counters.state == "degraded"
    assert "hunter2" not in caplog.text and f"127.0.0.1:{redis_server.port}" in caplog.text


def _ask(client: Any) -> int:
    response = client.post("/api/chat", json={"message": "Why does my knee hurt after the leg press?"})
    return int(response.status_code)


def test_two_apps_sharing_redis_count_a_client_once_and_keep_answering_without_it(
    serve: Callable[..., Any], redis_server: RedisServer
) -> None:
    url = SecretStr(redis_server.url)
    with serve(rate_limit="4/minute", redis_url=url) as first, serve(rate_limit="4/minute", redis_url=url) as second:
        assert first.client.get("/api/health").json()["limits"] == "redis"
        codes = [_ask(app.client) for app in (first, second) for _ in range(4)]
        assert codes.count(200) == 4 and codes.count(429) == 4  # the client's 4, once across both apps
        redis_server.stop()
        first.services.limiter.counters.recheck_seconds = 0.5  # a short wait, for the test
        health = first.client.get("/api/health")
        assert (health.status_code, health.json()["limits"]) == (200, "degraded")
        assert _ask(first.client) == 200  # answered: counted in this app's memory
        metrics = exposition()[0].decode()
        assert "bot_limits_degraded 1.0" in metrics and 'bot_failures_total{cause="limits_redis"}' in metrics
        redis_server.start()
        time.sleep(0.6)
        assert first.client.get("/api/health").json()["limits"] == "redis"
        # counted in the (restarted, empty) Redis again: shared with the other app once more
        assert [_ask(first.client) for _ in range(4)] == [200] * 4
        assert _ask(second.client) == 429


def test_an_app_whose_redis_is_down_at_start_answers_and_says_degraded(serve: Callable[..., Any]) -> None:
    from tests.server.conftest import closed_port_url

    url = SecretStr(closed_port_url().replace("http://", "redis://") + "/0")
    with serve(rate_limit="2/minute", redis_url=url) as served:
        assert [_ask(served.client) for _ in range(3)] == [200, 200, 429]  # counted in memory, still limited
        health = served.client.get("/api/health")
        assert (health.status_code, health.json()["limits"]) == (200, "degraded")
