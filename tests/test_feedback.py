"""Ratings are stored durably, purged after the retention period, and exported as eval cases."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import partial
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


def test_workers_opening_a_new_store_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    """Several workers share one data folder: the first to start creates the table, the others must not fail."""
    for attempt in range(5):
        path = tmp_path / str(attempt) / FILENAME
        with ThreadPoolExecutor(max_workers=8) as pool:
            stores = list(pool.map(partial(FeedbackStore, retention_days=90), [path] * 8))
        assert [store.count() for store in stores] == [0] * 8
        for store in stores:
            store.close()


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


def test_markup_in_what_people_wrote_is_escaped_in_the_export_and_the_case_says_so(tmp_path: Path) -> None:
    store = FeedbackStore.open(tmp_path, retention_days=30)
    question = "<img src=x onerror=alert(1)> why do my knees hurt"
    store.add(rated("down", question=question, comment="<script>steal()</script>", history=[
        {"role": "user", "content": "<b>hi</b>"}, {"role": "assistant", "content": "Hello."}]),
        engine_version="v", channel="page")  # fmt: skip
    store.add(rated("down", question="knee pain < 5 days?"), engine_version="v", channel="page")
    marked, plain = yaml.safe_load(export_yaml(store.rows(rating=-1)))["cases"]
    text = yaml.safe_dump(marked)
    assert "<img" not in text and "<script>" not in text and "<b>" not in text
    assert marked["turns"] == ["&lt;b&gt;hi&lt;/b&gt;", "&lt;img src=x onerror=alert(1)&gt; why do my knees hurt"]
    assert "markup-escaped" in marked["tags"]
    assert plain["question"] == "knee pain < 5 days?" and "markup-escaped" not in plain["tags"]  # not markup


def test_ratings_stored_before_answers_were_verified_are_marked_unverified(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / FILENAME) as db:  # a version-1 store, as the previous release wrote it
        db.executescript(
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, rating INTEGER "
            "NOT NULL, comment TEXT NOT NULL DEFAULT '', question TEXT NOT NULL, history TEXT NOT NULL, answer TEXT "
            "NOT NULL, status TEXT NOT NULL, reason TEXT, citations TEXT NOT NULL, engine_version TEXT NOT NULL, "
            "channel TEXT NOT NULL); PRAGMA user_version=1;"
        )
        db.execute("INSERT INTO feedback (created_at, rating, question, history, answer, status, citations, "
                   "engine_version, channel) VALUES (?, -1, 'old', '[]', 'a', 'answered', '[]', 'v', 'api')",
                   (datetime.now(timezone.utc).isoformat(timespec="seconds"),))  # fmt: skip
    store = FeedbackStore.open(tmp_path, retention_days=30)
    store.add(rated("down", question="new"), engine_version="v", channel="api")
    old, new = store.rows()
    assert (old.verified, new.verified) == (False, True)
    old_case, new_case = yaml.safe_load(export_yaml(store.rows(rating=-1)))["cases"]
    assert "unverified" in old_case["tags"] and "unverified" not in new_case["tags"]


def test_a_status_the_export_does_not_know_yet_is_kept_as_it_is(tmp_path: Path) -> None:
    store = FeedbackStore.open(tmp_path, retention_days=30)
    store.add(rated("down"), engine_version="v", channel="api")
    row = store.rows()[0]
    [case] = eval_cases([type(row)(**{**row.__dict__, "status": "chat"})])["cases"]
    assert case["expect"] == "chat"
