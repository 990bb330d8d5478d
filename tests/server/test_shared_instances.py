"""Two app instances with separate data dirs that share only Redis and PostgreSQL (over ``FakeEngine``).

A client gets its limit once across both; a rating through either appears in one export, each acknowledged
one exactly once; killing Redis mid-traffic loses no answer, killing PostgreSQL loses no acknowledged rating.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot.feedback import FeedbackStore, export_yaml
from bot.server.app import create_app
from bot.settings import Settings
from tests.conftest import TEST_HOSTS
from tests.fakes import FakeEngine
from tests.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

QUESTION = "Why does my knee hurt after the leg press?"
LIMIT = 12


@contextmanager
def instances(tmp_path: Path, redis_url: str, database_url: str, count: int = 2) -> Iterator[list[TestClient]]:
    """``count`` apps, each with its own index and data dir, sharing the Redis and PostgreSQL URLs."""
    with ExitStack() as stack:
        clients = []
        for n in range(count):
            settings = Settings(index_dir=tmp_path / f"index-{n}", data_dir=tmp_path / f"data-{n}",
                                rate_limit=f"{LIMIT}/minute", worker_threads=2, allowed_hosts=TEST_HOSTS,
                                redis_url=SecretStr(redis_url), database_url=SecretStr(database_url))  # fmt: skip
            app = create_app(settings, engine=FakeEngine(), page=False)
            clients.append(stack.enter_context(TestClient(app, raise_server_exceptions=False)))
        yield clients


def _ask(client: TestClient) -> Any:
    return client.post("/api/chat", json={"message": QUESTION})


def test_two_instances_share_the_limit_and_the_ratings(tmp_path: Path, redis_server: RedisServer,
                                                       database_url: str) -> None:  # fmt: skip
    with instances(tmp_path, redis_server.url, database_url) as (first, second):
        health = first.get("/api/health").json()
        assert (health["limits"], health["feedback"]) == ("redis", "postgresql")
        replies = [_ask(client) for _ in range(LIMIT) for client in (first, second)]
        answered = [reply.json() for reply in replies if reply.status_code == 200]
        assert len(answered) == LIMIT and sum(reply.status_code == 429 for reply in replies) == LIMIT
        acknowledged = []
        for n, answer in enumerate(answered[: LIMIT // 2]):  # ratings have an allowance of their own
            rating = (first, second)[n % 2].post("/api/feedback", json={"rating": "down", "answer": answer})
            assert rating.status_code == 201, rating.text
            acknowledged.append(rating.json()["id"])
    store = FeedbackStore.connect(Settings(database_url=SecretStr(database_url)).database_url, retention_days=30)
    exported = yaml.safe_load(export_yaml(store.rows(rating=-1)))["cases"]
    store.close()
    assert sorted(int(case["id"].removeprefix("feedback-")) for case in exported) == sorted(acknowledged)
    assert not (tmp_path / "data-0" / "feedback.sqlite3").exists()  # nothing kept apart on an instance


def test_redis_killed_mid_traffic_loses_no_answer_and_comes_back(tmp_path: Path, redis_server: RedisServer,
                                                                 database_url: str) -> None:  # fmt: skip
    with instances(tmp_path, redis_server.url, database_url) as (first, second):
        for client in (first, second):
            client.app.state.services.limiter.counters.recheck_seconds = 0.5  # type: ignore[attr-defined]
        assert [_ask(first).status_code for _ in range(3)] == [200] * 3
        redis_server.stop()
        stopped = time.monotonic()
        assert [_ask(client).status_code for client in (first, second) for _ in range(3)] == [200] * 6
        assert {client.get("/api/health").json()["limits"] for client in (first, second)} == {"degraded"}
        assert first.get("/api/health").status_code == 200  # still ready: answering goes on
        redis_server.start()
        while first.get("/api/health").json()["limits"] != "redis":
            assert time.monotonic() - stopped < 10, "did not go back to Redis"
            time.sleep(0.1)
        recovered = time.monotonic() - stopped
        assert [_ask(first).status_code for _ in range(LIMIT)] == [200] * LIMIT
        assert _ask(second).status_code == 429  # shared again
    print(f"back on Redis {recovered:.1f} s after it stopped (restarted at once)")


def test_postgres_killed_mid_traffic_loses_no_acknowledged_rating(tmp_path: Path, redis_server: RedisServer,
                                                                  postgres_server: PostgresServer,
                                                                  database_url: str) -> None:  # fmt: skip
    acknowledged, refused = [], 0
    with instances(tmp_path, redis_server.url, database_url) as (first, second):
        for n in range(8):
            client = (first, second)[n % 2]
            if n == 4:
                postgres_server.pause()
            answer = _ask(client)
            assert answer.status_code == 200  # answers never depend on the ratings' database
            rating = client.post("/api/feedback", json={"rating": "down", "answer": answer.json()})
            if rating.status_code == 201:
                acknowledged.append(rating.json()["id"])
            else:
                assert rating.status_code == 503 and "Traceback" not in rating.text
                assert "secret-pw" not in rating.text
                refused += 1
            if n == 5:
                postgres_server.resume()
        assert refused >= 1 and len(acknowledged) + refused == 8
        store = first.app.state.services.store  # type: ignore[attr-defined]
        assert sorted(row.id for row in store.rows()) == sorted(acknowledged)


def test_an_instance_started_while_postgres_is_down_answers_and_takes_ratings_once_it_is_back(
    tmp_path: Path, redis_server: RedisServer, postgres_server: PostgresServer, database_url: str
) -> None:
    postgres_server.pause()
    try:
        with instances(tmp_path, redis_server.url, database_url, count=1) as (client,):
            answer = _ask(client)
            assert answer.status_code == 200 and client.get("/api/health").status_code == 200
            refused = client.post("/api/feedback", json={"rating": "down", "answer": answer.json()})
            assert refused.status_code == 503 and refused.json()["error"] == "feedback_unavailable"
            postgres_server.resume()
            rated = client.post("/api/feedback", json={"rating": "down", "answer": answer.json()})
            assert rated.status_code == 201  # the table was created on first use
    finally:
        postgres_server.resume()
