"""The API's routes over ``FakeEngine``: the JSON contract, the event stream, health, feedback (milliseconds).

The same routes over the real engine and index are ``test_api.py``.
"""

from __future__ import annotations

import sqlite3

import pytest
from prometheus_client import REGISTRY

from bot import policy
from tests.fakes import canned_answer
from tests.server.conftest import Served
from tests.server.test_answering import QUESTION, sse_events

HISTORY = [{"role": "user", "content": "Is the leg press bad for knees?"}, {"role": "assistant", "content": "No."}]


def test_chat_answers_with_the_engines_answer_exactly(served: Served) -> None:
    response = served.client.post("/api/chat", json={"message": QUESTION, "history": HISTORY})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    served_answer = response.json()
    assert served_answer.pop("answer_id") and served_answer == canned_answer(QUESTION).model_dump(mode="json")
    [(question, history)] = served.engine.asked
    assert question == QUESTION and [turn.model_dump() for turn in history] == HISTORY


def test_the_stream_is_pieces_of_the_reply_then_the_whole_answer(served: Served) -> None:
    response = served.client.post("/api/chat/stream", json={"message": QUESTION})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [kind for kind, _ in events] == ["delta", "delta", "answer"]
    assert "".join(data["text"] for _, data in events[:-1]) == events[-1][1]["answer"]
    assert events[-1][1].pop("answer_id") and events[-1][1] == canned_answer(QUESTION).model_dump(mode="json")


def test_a_failure_mid_stream_is_an_error_event_that_names_nothing_internal(served: Served) -> None:
    served.engine.fail = RuntimeError("boom in /srv/bot/engine.py")
    response = served.client.post("/api/chat/stream", json={"message": QUESTION})
    assert sse_events(response.text) == [("error", {"error": "internal_error", "message": policy.INTERNAL_ERROR})]


def test_health_reports_what_a_question_would_be_answered_from(served: Served) -> None:
    served.engine.index.manifest.version = 7  # a newer index, switched to by refresh()
    response = served.client.get("/api/health")
    body = response.json()
    assert response.status_code == 200 and served.engine.refreshes >= 1
    assert (body["status"], body["ready"], body["index_version"], body["passages"]) == ("ready", True, 7, 3)
    assert (body["version"], body["composer"], body["page"]) == (served.engine.version, "extractive", "off")
    assert REGISTRY.get_sample_value("bot_index_version") == 7 and REGISTRY.get_sample_value("bot_ready") == 1


def test_a_rating_is_stored_with_the_api_channel(served: Served) -> None:
    answer = served.client.post("/api/chat", json={"message": QUESTION, "history": HISTORY}).json()
    response = served.client.post("/api/feedback", json={"rating": "up", "answer": answer, "history": HISTORY})
    assert response.status_code == 201
    assert served.services.store is not None
    [row] = served.services.store.rows()
    assert (row.id, row.rating, row.channel, row.engine_version) == (response.json()["id"], 1, "api",
                                                                     served.engine.version)  # fmt: skip
    assert row.verified and row.history == HISTORY


@pytest.mark.parametrize(
    "change",
    [
        lambda a, h: a.update(answer="A made-up answer, without the disclaimer."),  # an answer it never gave
        lambda a, h: a.update(question="<b>What</b> I never asked"),  # another question
        lambda a, h: a.update(status="escalated"),
        lambda a, h: a["citations"].clear(),
        lambda a, h: h.append({"role": "user", "content": "a turn that wasn't there"}),  # another conversation
        lambda a, h: a.update(answer_id="A" * 43),  # an id of its own
        lambda a, h: a.pop("answer_id"),  # no id at all (a 422 for the missing field)
    ],
    ids=["answer", "question", "status", "citations", "history", "forged-id", "no-id"],
)
def test_only_an_answer_this_server_gave_unchanged_can_be_rated(served: Served, change) -> None:
    answer = served.client.post("/api/chat", json={"message": QUESTION}).json()
    history: list[dict[str, str]] = []
    change(answer, history)
    response = served.client.post("/api/feedback", json={"rating": "down", "answer": answer, "history": history})
    assert response.status_code in (403, 422) and response.json()["error"] in {"answer_not_verified", "invalid_request"}
    assert served.services.store is not None and served.services.store.rows() == []


def test_a_rating_that_cannot_be_stored_is_a_503_and_is_counted(served: Served, fake_settings) -> None:
    def failed_writes() -> float:
        return REGISTRY.get_sample_value("bot_failures_total", {"cause": "feedback_write"}) or 0.0

    answer = served.client.post("/api/chat", json={"message": QUESTION}).json()
    with sqlite3.connect(fake_settings.data_dir / "feedback.sqlite3") as db:
        db.execute("ALTER TABLE feedback RENAME TO feedback_broken")
    before = failed_writes()
    response = served.client.post("/api/feedback", json={"rating": "down", "answer": answer})
    assert (response.status_code, response.headers["retry-after"]) == (503, "30")
    assert response.json() == {"error": "feedback_unavailable", "message": policy.FEEDBACK_UNAVAILABLE}
    assert failed_writes() == before + 1


def test_ratings_have_a_rate_limit_of_their_own(serve) -> None:
    with serve(rate_limit="1/minute") as served:
        answer = served.client.post("/api/chat", json={"message": QUESTION}).json()
        assert served.client.post("/api/feedback", json={"rating": "up", "answer": answer}).status_code == 201
        refused = served.client.post("/api/feedback", json={"rating": "up", "answer": answer})
        asked = served.client.post("/api/chat", json={"message": QUESTION})
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert asked.status_code == 429  # the one question this minute was the one rated
