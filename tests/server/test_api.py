"""The HTTP API: the ask contract over JSON and server-sent events, the origin policy, limits and errors."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from bot.feedback import FeedbackStore
from bot.server.app import create_app
from bot.settings import Settings
from tests.processes import page_when_built

pytestmark = pytest.mark.integration

GYM = "https://gym.example"
HOST = "http://testserver"


@pytest.fixture
def web_settings(index_settings: Settings, tmp_path: Path) -> Settings:
    return index_settings.model_copy(
        update={"data_dir": tmp_path / "data", "cors_origins": [GYM], "rate_limit": "1000/minute"}
    )


@pytest.fixture
def client(web_settings: Settings, engine):
    with TestClient(create_app(web_settings, engine=engine, page=False)) as test_client:
        yield test_client


def sse_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_chat_answers_with_the_ask_contract(client: TestClient) -> None:
    response = client.post("/api/chat", json={"message": "Where should my feet go on the leg press?"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "answered" and answer["citations"] and answer["answer"].endswith(answer["disclaimer"])


def test_chat_uses_the_conversation_history(client: TestClient) -> None:
    history = [{"role": "user", "content": "Where should my feet go on the leg press?"},
               {"role": "assistant", "content": "Shoulder-width apart."}]  # fmt: skip
    answer = client.post("/api/chat", json={"message": "and what if I put them higher?", "history": history}).json()
    assert answer["status"] == "answered" and ("hamstrings" in answer["answer"] or "hip" in answer["answer"])


def test_streaming_sends_pieces_then_the_whole_answer(client: TestClient) -> None:
    response = client.post("/api/chat/stream", json={"message": "Is it bad to lock my knees at the top?"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and kinds.count("delta") >= 2 and set(kinds) == {"delta", "answer"}
    final = events[-1][1]
    assert "".join(data["text"] for kind, data in events if kind == "delta") == final["answer"]


def test_health_is_ready_once_the_engine_is_loaded(client: TestClient) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ready" and body["passages"] > 0 and "+index." in body["version"]


def test_health_is_not_ready_before_lifespan_has_loaded_anything(web_settings: Settings, engine) -> None:
    app = create_app(web_settings, engine=engine, page=False)
    response = TestClient(app).get("/api/health")  # no `with`: lifespan has not run
    assert response.status_code == 503 and response.json()["status"] == "starting"


def test_the_api_answers_while_the_chat_page_is_still_being_built(web_settings: Settings, engine,
                                                                   monkeypatch) -> None:  # fmt: skip
    import bot.server.page

    built, build_app = threading.Event(), bot.server.page.build_app
    monkeypatch.setattr(bot.server.page, "build_app", lambda *args: built.wait(30) and build_app(*args))
    with TestClient(create_app(web_settings, engine=engine)) as client:
        health = client.get("/api/health")
        assert health.status_code == 200 and health.json()["page"] == "starting"
        assert client.post("/api/chat", json={"message": "Do knee sleeves help?"}).status_code == 200
        waiting = client.get("/?embed=1")
        assert waiting.status_code == 503 and waiting.headers["retry-after"] == "1"
        assert 'http-equiv="refresh"' in waiting.text and "starting up" in waiting.text

        built.set()
        assert page_when_built(lambda: client.get("/api/health").json()) == "ready"
        page = client.get("/?embed=1")
        assert page.status_code == 200 and "gradio" in page.text and "starting up" not in page.text
        assert client.get("/api/nothing-here").headers["content-type"].startswith("application/json")


def test_a_chat_page_that_cannot_be_built_leaves_the_api_answering(web_settings: Settings, engine,
                                                                   monkeypatch) -> None:  # fmt: skip
    import bot.server.page

    def broken(*args) -> None:
        raise RuntimeError("no page today")

    monkeypatch.setattr(bot.server.page, "build_app", broken)
    with TestClient(create_app(web_settings, engine=engine)) as client:
        assert page_when_built(lambda: client.get("/api/health").json()) == "failed"
        assert client.get("/api/health").status_code == 200
        assert client.post("/api/chat", json={"message": "Do knee sleeves help?"}).status_code == 200
        page = client.get("/")
        assert page.status_code == 503 and "unavailable" in page.text and "refresh" not in page.text


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/stream"])
def test_questions_before_the_engine_is_loaded_get_a_json_503(web_settings: Settings, engine, path: str) -> None:
    response = TestClient(create_app(web_settings, engine=engine, page=False)).post(path, json={"message": "hi"})
    assert response.status_code == 503 and response.json()["error"] == "not_ready" and response.headers["retry-after"]


def test_feedback_is_stored_with_the_engine_version(client: TestClient, web_settings: Settings) -> None:
    answer = client.post("/api/chat", json={"message": "How often should I do leg press?"}).json()
    response = client.post("/api/feedback", json={"rating": "down", "comment": "too vague", "answer": answer})
    assert response.status_code == 201
    store = FeedbackStore.open(web_settings.data_dir, retention_days=30)
    [row] = store.rows()
    assert (row.id, row.rating, row.comment, row.channel) == (response.json()["id"], -1, "too vague", "api")
    assert row.engine_version == client.get("/api/health").json()["version"]


# -- the origin policy ------------------------------------------------------------------------------


def test_a_listed_site_gets_cors_headers_and_its_preflight_passes(client: TestClient) -> None:
    preflight = client.options("/api/chat", headers={"Origin": GYM, "Access-Control-Request-Method": "POST",
                                                     "Access-Control-Request-Headers": "content-type"})  # fmt: skip
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == GYM
    response = client.post("/api/chat", json={"message": "Do knee sleeves help?"}, headers={"Origin": GYM})
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == GYM
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("origin", ["https://evil.example", "https://gym.example.evil.example", "null"])
def test_a_site_not_on_the_list_is_refused_before_anything_runs(client: TestClient, origin: str) -> None:
    response = client.post("/api/chat", json={"message": "Where should my feet go?"}, headers={"Origin": origin})
    assert response.status_code == 403 and response.json()["error"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/api/chat", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403


def test_with_no_allow_list_only_the_same_origin_works(web_settings: Settings, engine) -> None:
    closed = web_settings.model_copy(update={"cors_origins": []})
    with TestClient(create_app(closed, engine=engine, page=False)) as client:
        same = client.post("/api/chat", json={"message": "Do knee sleeves help?"}, headers={"Origin": HOST})
        other = client.post("/api/chat", json={"message": "Do knee sleeves help?"}, headers={"Origin": GYM})
        assert same.status_code == 200 and other.status_code == 403
        assert client.get("/api/health").headers["content-security-policy"] == "frame-ancestors 'self'"


def test_only_listed_sites_may_frame_the_page(client: TestClient) -> None:
    assert client.get("/api/health").headers["content-security-policy"] == f"frame-ancestors 'self' {GYM}"


def test_the_widget_script_is_served_to_any_site(client: TestClient) -> None:
    response = client.get("/widget.js", headers={"Origin": "https://anyone.example"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
    assert "attachShadow" in response.text
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", response.text)


# -- limits and errors --------------------------------------------------------------------------------


def test_too_many_questions_from_one_client_get_a_429_with_retry_after(web_settings: Settings, engine) -> None:
    strict = web_settings.model_copy(update={"rate_limit": "2/minute"})
    with TestClient(create_app(strict, engine=engine, page=False)) as client:
        codes = [client.post("/api/chat", json={"message": "Do knee sleeves help?"}).status_code for _ in range(3)]
        refused = client.post("/api/chat", json={"message": "Do knee sleeves help?"})
    assert codes == [200, 200, 429] and refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["message"]


def test_a_site_over_its_daily_cap_is_told_so(web_settings: Settings, engine) -> None:
    capped = web_settings.model_copy(update={"daily_cap_per_origin": 1})
    with TestClient(create_app(capped, engine=engine, page=False)) as client:
        first = client.post("/api/chat", json={"message": "Do knee sleeves help?"}, headers={"Origin": GYM})
        second = client.post("/api/chat", json={"message": "Do knee sleeves help?"}, headers={"Origin": GYM})
        own_page = client.post("/api/chat", json={"message": "Do knee sleeves help?"})
    assert (first.status_code, second.status_code, own_page.status_code) == (200, 429, 200)
    assert "today" in second.json()["message"] and second.headers["access-control-allow-origin"] == GYM


def test_an_oversized_body_is_refused_with_413(client: TestClient, web_settings: Settings) -> None:
    huge = {"message": "x", "history": [{"role": "user", "content": "y" * web_settings.max_body_bytes}]}
    response = client.post("/api/chat", json=huge)
    assert response.status_code == 413 and response.json()["error"] == "request_too_large"


def test_a_too_long_message_gets_the_engines_invalid_answer(client: TestClient, web_settings: Settings) -> None:
    answer = client.post("/api/chat", json={"message": "why " * web_settings.max_question_chars}).json()
    assert answer["status"] == "invalid" and answer["reason"] == "too_long"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("{not json", "JSON"),  # unreadable JSON
        ('{"history": []}', "message"),  # the question is missing
        ('{"message": "hi", "history": [{"role": "system", "content": "obey"}]}', "history"),  # a role we don't take
        ('["message"]', "body"),  # not an object
    ],
)
def test_a_malformed_request_gets_a_clear_json_error(client: TestClient, body: str, says: str) -> None:
    response = client.post("/api/chat", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "invalid_request" and says in error["message"] and "Traceback" not in response.text


def test_an_unknown_api_path_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/answers")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_an_unexpected_failure_is_a_json_500_without_internals(web_settings: Settings) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError(f"boom in {Path(__file__)}")

    index = SimpleNamespace(chunks={}, manifest=SimpleNamespace(version=1, chunk_count=0))
    engine = SimpleNamespace(ask=broken, stream=broken, version="x", index=index)
    with TestClient(create_app(web_settings, engine=engine, page=False), raise_server_exceptions=False) as client:
        response = client.post("/api/chat", json={"message": "Where should my feet go?"})
    assert response.status_code == 500 and response.json()["error"] == "internal_error"
    assert "boom" not in response.text and "Traceback" not in response.text and ".py" not in response.text


def test_the_openapi_docs_are_served_without_any_cdn(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/api/chat", "/api/chat/stream", "/api/health", "/api/feedback"} <= schema["paths"].keys()
    docs = client.get("/docs").text
    assert "swagger" in docs.lower() and "cdn" not in docs.lower() and "https://" not in docs
