"""Ratings are stored durably, purged after the retention period, and exported as eval cases."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from bot.contract import Answer, Citation, Status
from bot.feedback import FILENAME, Feedback, FeedbackStore, eval_cases, export_yaml


def rated(rating: str = "down", question: str = "Where do my feet go?", history=None, comment: str = "") -> Feedback:
    citation = Citation(n=1, chunk_id="c", doc_id="d", title="T", section="S", text="Feet flat.", quote="Feet flat.",
                        start=0, end=10)  # fmt: skip
    answer = Answer(question=question, status=Status.answered, answer="Feet flat. [1]\n\n---\nD", disclaimer="D",
                    citations=[citation], reason="answered")  # fmt: skip
    return Feedback(rating=rating, comment=comment, history=history or [], answer=answer)


def test_the_store_uses_a_write_ahead_log(tmp_path: Path) -> None:
    FeedbackStore.open(tmp_path, retention_days=30).close()
    with sqlite3.connect(tmp_path / FILENAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_rating_is_stored_with_its_conversation_answer_and_version(tmp_path: Path) -> None:
    store = FeedbackStore.open(tmp_path, retention_days=30)
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    store.add(rated("down", history=history, comment=" wrong foot "), engine_version="0.1.0+index.1", channel="page")
    [row] = store.rows()
    assert (row.rating, row.comment, row.question, row.status) == (-1, "wrong foot", "Where do my feet go?", "answered")
    assert (
        row.history == history and row.citations[0]["quote"] == "Feet flat." and row.engine_version == "0.1.0+index.1"
    )
    assert datetime.fromisoformat(row.created_at).tzinfo is not None
    assert not {"ip", "client", "user_agent"} & set(row.__dataclass_fields__)  # no personal data beyond the text


def test_many_simultaneous_ratings_are_all_kept_after_the_server_stops(tmp_path: Path) -> None:
    store = FeedbackStore.open(tmp_path, retention_days=30)
    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(
            pool.map(lambda i: store.add(rated(question=f"q{i}"), engine_version="v", channel="api"), range(200))
        )
    store.close()
    reopened = FeedbackStore.open(tmp_path, retention_days=30)
    assert len(set(ids)) == 200 and reopened.count() == 200


def test_a_comment_can_follow_the_rating(tmp_path: Path) -> None:
    store = FeedbackStore.open(tmp_path, retention_days=30)
    feedback_id = store.add(rated(), engine_version="v", channel="page")
    assert store.add_comment(feedback_id, "It ignored my question") and not store.add_comment(feedback_id + 1, "x")
    assert store.rows()[0].comment == "It ignored my question"


def test_ratings_older_than_the_retention_period_are_purged(tmp_path: Path) -> None:
    store = FeedbackStore.open(tmp_path, retention_days=30)
    now = datetime.now(timezone.utc)
    store.add(rated(question="old"), engine_version="v", channel="page", now=now - timedelta(days=31))
    store.add(rated(question="new"), engine_version="v", channel="page", now=now - timedelta(days=29))
    assert store.purge() == 1 and [r.question for r in store.rows()] == ["new"]


def test_thumbs_down_export_is_an_eval_question_set(tmp_path: Path) -> None:
    store = FeedbackStore.open(tmp_path, retention_days=30)
    store.add(rated("up", question="fine"), engine_version="v", channel="page")
    store.add(rated("down", question="bad", comment="wrong"), engine_version="v", channel="page")
    store.add(rated("down", question="and why?", history=[{"role": "user", "content": "Lock out?"},
                                                          {"role": "assistant", "content": "No."}]),
              engine_version="v", channel="api")  # fmt: skip
    data = yaml.safe_load(export_yaml(store.rows(rating=-1)))
    assert data["name"] == "feedback" and data["description"]
    single, follow_up = data["cases"]
    assert single["question"] == "bad" and single["expect"] == "answer" and "thumbs-down" in single["tags"]
    assert single["feedback"]["comment"] == "wrong"
    assert follow_up["turns"] == ["Lock out?", "and why?"] and "question" not in follow_up
    assert {c["id"] for c in data["cases"]} == {c["id"] for c in eval_cases(store.rows(rating=-1))["cases"]}
