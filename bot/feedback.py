"""Thumbs up/down on answers, kept in SQLite, and exported as eval cases for the QA team.

One row per rating, written in its own transaction (WAL journal, ``synchronous=FULL``): a rating the
server acknowledged survives the server stopping. Writes from many threads go through one connection
under a lock; other processes (the export command) read the same file safely. Only the conversation
text is stored — no IP address, no browser details. Rows older than the retention period are purged.
Each row says whether its answer is verified: the page's own record, or an API rating whose signed answer
id checked out (rows from before that check are not). The export escapes markup and tags what isn't verified.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from threading import Lock
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from bot.contract import Answer, Message, Status

FILENAME = "feedback.sqlite3"
_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at     TEXT    NOT NULL,  -- UTC, ISO 8601
    rating         INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment        TEXT    NOT NULL DEFAULT '',
    question       TEXT    NOT NULL,
    history        TEXT    NOT NULL,  -- JSON list of {"role", "content"}
    answer         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    reason         TEXT,
    citations      TEXT    NOT NULL,  -- JSON list of the Answer contract's citations
    engine_version TEXT    NOT NULL,
    channel        TEXT    NOT NULL,  -- where the rating came from: page or api
    verified       INTEGER NOT NULL DEFAULT 0  -- 1: the server's own answer (page) or its signed id checked (api)
);
CREATE INDEX IF NOT EXISTS feedback_created_at ON feedback (created_at);
"""
#: Eval-set ``expect`` for each status, so an exported case reads like the hand-written ones.
EXPECT = {
    Status.answered: "answer",
    Status.escalated: "escalate",
    Status.out_of_scope: "refuse",
    Status.not_found: "not_found",
    Status.invalid: "invalid",
    Status.chat: "chat",
}
MAX_COMMENT_CHARS = 2000


class Feedback(BaseModel):
    """A rating of one answer, as the page or an API client sends it."""

    rating: Literal["up", "down"]
    comment: str = Field("", max_length=MAX_COMMENT_CHARS, description="Optional words on what was wrong or right.")
    history: list[Message] = Field(default_factory=list, description="The conversation before the question.")
    answer: Answer = Field(description="The answer being rated, exactly as the API returned it.")


@dataclass(frozen=True)
class StoredFeedback:
    """A feedback row as read back."""

    id: int
    created_at: str
    rating: int
    comment: str
    question: str
    history: list[dict[str, str]]
    answer: str
    status: str
    reason: str | None
    citations: list[dict[str, Any]]
    engine_version: str
    channel: str
    verified: bool


class FeedbackStore:
    """The feedback table in ``<data_dir>/feedback.sqlite3``."""

    def __init__(self, path: Path, *, retention_days: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention_days = retention_days
        self._lock = Lock()
        # Autocommit mode: every statement below is its own transaction, committed before it returns.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(feedback)")}
            if "verified" not in columns:  # a version-1 file: its ratings were never verified
                self._db.execute("ALTER TABLE feedback ADD COLUMN verified INTEGER NOT NULL DEFAULT 0")
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @classmethod
    def open(cls, data_dir: Path, *, retention_days: int) -> FeedbackStore:
        """The store in ``data_dir``, with rows past the retention period already purged."""
        store = cls(data_dir / FILENAME, retention_days=retention_days)
        store.purge()
        return store

    def add(self, feedback: Feedback, *, engine_version: str, channel: str, verified: bool = True,
            now: datetime | None = None) -> int:  # fmt: skip
        """Store one rating; returns its id once it is safely on disk.

        ``verified``: the answer is the server's own record (the page's) or its signed id was checked (the API's).
        """
        answer = feedback.answer
        row = (
            (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
            1 if feedback.rating == "up" else -1,
            feedback.comment.strip(),
            answer.question,
            json.dumps([m.model_dump() for m in feedback.history], ensure_ascii=False),
            answer.answer,
            answer.status.value,
            answer.reason,
            json.dumps([c.model_dump() for c in answer.citations], ensure_ascii=False),
            engine_version,
            channel,
            int(verified),
        )
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO feedback (created_at, rating, comment, question, history, answer, status, reason, "
                "citations, engine_version, channel, verified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def add_comment(self, feedback_id: int, comment: str) -> bool:
        """Attach (or replace) the comment of a stored rating; ``False`` if there is no such rating."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE feedback SET comment = ? WHERE id = ?", (comment.strip()[:MAX_COMMENT_CHARS], feedback_id)
            )
        return cursor.rowcount == 1

    def purge(self, now: datetime | None = None) -> int:
        """Delete rows older than the retention period; returns how many went."""
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=self.retention_days)
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM feedback WHERE created_at < ?", (cutoff.isoformat(timespec="seconds"),)
            )
        return cursor.rowcount

    def rows(self, *, rating: int | None = None) -> list[StoredFeedback]:
        """Stored ratings, oldest first; only thumbs-down with ``rating=-1``."""
        query = "SELECT * FROM feedback" + (" WHERE rating = ?" if rating is not None else "") + " ORDER BY id"
        with self._lock:
            cursor = self._db.execute(query, () if rating is None else (rating,))
            names = [d[0] for d in cursor.description]
            found = cursor.fetchall()
        result = []
        for values in found:
            record = dict(zip(names, values, strict=True))
            record["history"] = json.loads(record["history"])
            record["citations"] = json.loads(record["citations"])
            record["verified"] = bool(record["verified"])
            result.append(StoredFeedback(**record))
        return result

    def count(self) -> int:
        """How many ratings are stored."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def close(self) -> None:
        """Checkpoint the journal into the main file and close."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()


#: Markup: HTML/XML tags, comments and CDATA (template syntax is inert in YAML and in the eval reports).
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!?][^<>]*>|<!--|\]\]>")


def defang(text: str) -> tuple[str, bool]:
    """``text`` with its markup escaped (``<b>`` → ``&lt;b&gt;``), and whether there was any."""
    escaped, found = _MARKUP.subn(lambda match: html.escape(match.group(0), quote=False), text)
    return escaped, found > 0


def eval_cases(rows: Sequence[StoredFeedback]) -> dict[str, Any]:
    """Thumbs-down ratings as an eval question set (the format of ``eval/sets/*.yaml``).

    ``expect`` records what the bot did; the QA team corrects it (and adds ``gold_spans``) when they adopt
    a case. The user's comment and the reply they rated travel along under ``feedback``. Markup anywhere in
    them is escaped (tagged ``markup-escaped``); a rating whose answer wasn't verified is tagged ``unverified``.
    """
    cases = []
    for row in rows:
        escaped: list[bool] = []

        def clean(text: str, escaped: list[bool] = escaped) -> str:
            safe, found = defang(text)
            escaped.append(found)
            return safe

        earlier = [clean(m["content"]) for m in row.history if m.get("role") == "user"]
        case: dict[str, Any] = {"id": f"feedback-{row.id}"}
        if earlier:
            case["turns"] = [*earlier, clean(row.question)]
        else:
            case["question"] = clean(row.question)
        case["expect"] = {status.value: expect for status, expect in EXPECT.items()}.get(row.status, row.status)
        case["tags"] = ["feedback", "thumbs-down", "needs-review"]
        case["feedback"] = {
            "comment": clean(row.comment),
            "status": row.status,
            "reason": row.reason,
            "answer": clean(row.answer),
            "rated_at": row.created_at,
            "engine_version": row.engine_version,
        }
        case["tags"] += ["markup-escaped"] if any(escaped) else []
        case["tags"] += [] if row.verified else ["unverified"]
        cases.append(case)
    return {
        "name": "feedback",
        "description": (
            "Answers people rated thumbs-down, exported from the feedback store. `expect` is what the bot did, "
            "not what it should do: review each case, correct `expect`, add gold_spans/must_include, then move "
            "it into a set under eval/sets/. Markup in them is escaped; `unverified` ones may not be this bot's."
        ),
        "cases": cases,
    }


def export_yaml(rows: Sequence[StoredFeedback]) -> str:
    """``eval_cases`` as YAML text."""
    return yaml.safe_dump(eval_cases(rows), sort_keys=False, allow_unicode=True, width=110)
