"""Request ids, JSON-lines logs and Prometheus metrics, as an operator sees them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.server.app import create_app
from bot.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def client(index_settings: Settings, engine, tmp_path: Path):
    settings = index_settings.model_copy(update={"data_dir": tmp_path / "data", "rate_limit": "1000/minute",
                                                  "metrics_token": SecretStr(TOKEN)})  # fmt: skip
    with TestClient(create_app(settings, engine=engine, page=False)) as test_client:
        yield test_client


TOKEN = "scrape-me-please"


def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    response = client.get("/api/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("checkout-7f3a", True),  # a sane id from a proxy or client is passed through
        ("two words", False),  # anything else is replaced by our own
        ("x" * 200, False),  # too long
    ],
)
def test_every_response_carries_a_request_id(client: TestClient, offered: str, kept: bool) -> None:
    response = client.get("/api/health", headers={"X-Request-ID": offered})
    assert (response.headers["x-request-id"] == offered) is kept
    assert len(response.headers["x-request-id"]) >= 8
    assert client.get("/api/nothing-here").headers["x-request-id"]  # errors too


def test_a_request_is_one_json_log_line_with_its_id_status_and_stage_timings(
    client: TestClient, json_logs: Callable[[], list[dict]]
) -> None:
    response = client.post("/api/chat", json={"message": "Where should my feet go?"})
    [line] = [e for e in json_logs() if e["logger"] == "bot.access" and e["path"] == "/api/chat"]
    assert line["request_id"] == response.headers["x-request-id"] and line["status"] == 200
    assert line["answer_status"] == "answered" and line["duration_ms"] > 0
    assert set(line["timings_ms"]) >= {"screen", "retrieve", "triage", "compose", "guard", "total"}
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")


def test_metrics_count_requests_stages_index_version_and_cache_hits(client: TestClient, engine) -> None:
    before = scrape(client)
    question = "How often should I do the leg press? (metrics test)"
    for _ in range(3):
        assert client.post("/api/chat", json={"message": question}).status_code == 200
    client.post("/api/chat", json=[])  # a malformed body: 422
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("bot_http_requests_total", route="/api/chat", code="200") == 3
    assert grew("bot_http_requests_total", route="/api/chat", code="422") == 1
    assert grew("bot_answers_total", status="answered") == 3
    for stage in ("screen", "retrieve", "triage", "compose", "guard", "total"):
        assert grew("bot_stage_duration_seconds_count", stage=stage) == 3
    assert grew("bot_http_request_duration_seconds_count", route="/api/chat") == 4
    # The first ask searches; the next two are served from the retrieval cache.
    assert grew("bot_cache_lookups_total", cache="retrieval", result="miss") == 1
    assert grew("bot_cache_lookups_total", cache="retrieval", result="hit") == 2
    assert grew("bot_cache_lookups_total", cache="query_vector", result="hit") >= 2
    assert 0 < after[("bot_cache_hit_ratio", (("cache", "retrieval"),))] <= 1
    assert after[("bot_index_version", ())] == engine.index.manifest.version
    assert after[("bot_ready", ())] == 1
