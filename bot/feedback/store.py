"""The feedback table, over SQLAlchemy Core: SQLite in ``BOT_DATA_DIR`` by default, PostgreSQL with a URL.

One row per rating, written in its own transaction, committed before ``add`` returns: a rating the server
acknowledged survives the server (or the database server) stopping. SQLite: a WAL journal with
``synchronous=FULL``, one connection that many threads share under a lock, other processes (the export
command) reading the same file safely. PostgreSQL (``BOT_DATABASE_URL``, driver psycopg 3): a connection pool
that every instance's workers share the table through. The schema is created (or a version-1 SQLite file
brought up to date) on opening. Rows older than the retention period are purged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path
from threading import Lock
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.pool import StaticPool

from bot.feedback.records import MAX_COMMENT_CHARS, Feedback, StoredFeedback
from bot.settings import Settings, server_address

log = logging.getLogger("bot.feedback.store")

FILENAME = "feedback.sqlite3"
#: What a store's failure to read or write raises (the database, or the file system under SQLite).
STORE_ERRORS: tuple[type[Exception], ...] = (sa.exc.SQLAlchemyError, OSError)
_SCHEMA_VERSION = 2


def _postgres_text(value: Any) -> Any:
    """``value`` as PostgreSQL's text can hold it: a NUL (SQLite keeps it, PostgreSQL refuses it) becomes U+FFFD.

    The replacement character, rather than the rating failing (``rows`` then read U+FFFD where the NUL was).
    """
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


_metadata = sa.MetaData()
TABLE = sa.Table(
    "feedback",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),  # UTC, ISO 8601
    sa.Column("rating", sa.Integer, sa.CheckConstraint("rating IN (-1, 1)"), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("history", sa.Text, nullable=False),  # JSON list of {"role", "content"}
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("citations", sa.Text, nullable=False),  # JSON list of the Answer contract's citations
    sa.Column("engine_version", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),  # where the rating came from: page or api
    # 1: the server's own answer (page) or its signed id checked (api)
    sa.Column("verified", sa.Integer, nullable=False, server_default="0"),
    sa.Index("feedback_created_at", "created_at"),
    sqlite_autoincrement=True,
)


def _sqlite_engine(path: Path) -> sa.Engine:
    # One connection for every thread (under the store's lock), in autocommit mode: each statement is its
    # own transaction, committed before it returns.
    connect_args = {"check_same_thread": False, "timeout": 30}
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=StaticPool, isolation_level="AUTOCOMMIT",
                              hide_parameters=True, connect_args=connect_args)  # fmt: skip

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
            connection.execute(f"PRAGMA {pragma}")

    return engine


class FeedbackStore:
    """The feedback table in ``<data_dir>/feedback.sqlite3``, or in a PostgreSQL database (``connect``)."""

    def __init__(self, path: Path | None = None, *, retention_days: int, engine: sa.Engine | None = None,
                 lazy: bool = False) -> None:  # fmt: skip
        """``lazy``: if the database can't be reached now, create the table on first use instead of raising."""
        if engine is None:
            assert path is not None, "a SQLite file's path, or an engine"
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = _sqlite_engine(path)
        self.path = path
        self.retention_days = retention_days
        self._engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._lock: AbstractContextManager[Any] = Lock() if self.sqlite else nullcontext()
        self._schema_ready = False
        with self._lock:
            try:
                self._create_schema()
            except STORE_ERRORS:
                if not lazy:
                    engine.dispose()
                    raise

    def _create_schema(self) -> None:
        try:
            self._create_schema_once()
        except sa.exc.DBAPIError:
            # Workers starting together race between checking for the table and creating it (SQLite runs in
            # autocommit, PostgreSQL's IF NOT EXISTS is not atomic either): the loser finds it the second time.
            self._create_schema_once()

    def _create_schema_once(self) -> None:
        with self._engine.begin() as db:
            db.execute(sa.schema.CreateTable(TABLE, if_not_exists=True))
            for index in TABLE.indexes:
                db.execute(sa.schema.CreateIndex(index, if_not_exists=True))
            columns = {column["name"] for column in sa.inspect(db).get_columns("feedback")}
            if "verified" not in columns:  # a version-1 file: its ratings were never verified
                db.execute(sa.text("ALTER TABLE feedback ADD COLUMN verified INTEGER NOT NULL DEFAULT 0"))
            if self.sqlite:
                db.execute(sa.text(f"PRAGMA user_version={_SCHEMA_VERSION}"))
        self._schema_ready = True

    @contextmanager
    def _begin(self, *, write: bool = True) -> Iterator[sa.Connection]:
        """A transaction (``write``) or a connection, under the lock (SQLite), once the table exists."""
        with self._lock:
            if not self._schema_ready:  # the database was unreachable when the store was opened
                self._create_schema()
            with self._engine.begin() if write else self._engine.connect() as db:
                yield db

    @classmethod
    def open(cls, data_dir: Path, *, retention_days: int) -> FeedbackStore:
        """The store in ``data_dir``, with rows past the retention period already purged."""
        store = cls(data_dir / FILENAME, retention_days=retention_days)
        store.purge()
        return store

    @classmethod
    def connect(cls, url: SecretStr, *, retention_days: int, strict: bool = True) -> FeedbackStore:
        """The store in the PostgreSQL database at ``url`` (``postgresql+psycopg://…``), purged like ``open``'s.

        Not ``strict`` (the server): an unreachable database is logged, and its table created on first use.
        """
        engine = sa.create_engine(url.get_secret_value(), pool_pre_ping=True, hide_parameters=True, pool_size=5,
                                  max_overflow=5, pool_timeout=10, connect_args={"connect_timeout": 5})  # fmt: skip
        store = cls(retention_days=retention_days, engine=engine, lazy=not strict)
        try:
            store.purge()
        except STORE_ERRORS as error:
            if strict:
                store.close()
                raise
            log.error("PostgreSQL at %s is unreachable (%s); ratings are refused until it answers.",
                      server_address(url), error.__class__.__name__)  # fmt: skip
        return store

    @classmethod
    def for_settings(cls, settings: Settings, *, strict: bool = True) -> FeedbackStore:
        """The store ``settings`` name: PostgreSQL with ``database_url`` (``strict``: see ``connect``), else SQLite."""
        if settings.database_url is not None:
            return cls.connect(settings.database_url, retention_days=settings.feedback_retention_days, strict=strict)
        return cls.open(settings.data_dir, retention_days=settings.feedback_retention_days)

    def add(self, feedback: Feedback, *, engine_version: str, channel: str, verified: bool = True,
            now: datetime | None = None) -> int:  # fmt: skip
        """Store one rating; returns its id once it is committed (on disk, or in PostgreSQL).

        ``verified``: the answer is the server's own record (the page's) or its signed id was checked (the API's).
        """
        answer = feedback.answer
        row = {
            "created_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
            "rating": 1 if feedback.rating == "up" else -1,
            "comment": feedback.comment.strip(),
            "question": answer.question,
            "history": json.dumps([m.model_dump() for m in feedback.history], ensure_ascii=False),
            "answer": answer.answer,
            "status": answer.status.value,
            "reason": answer.reason,
            "citations": json.dumps([c.model_dump() for c in answer.citations], ensure_ascii=False),
            "engine_version": engine_version,
            "channel": channel,
            "verified": int(verified),
        }
        return self.insert([row])[0]

    def insert(self, rows: list[dict[str, Any]]) -> list[int]:
        """Store rows as the table holds them (without ``id``), in one transaction (SQLite: one each); their ids."""
        if not self.sqlite:
            rows = [{key: _postgres_text(value) for key, value in row.items()} for row in rows]
        with self._begin() as db:
            return [int(db.execute(TABLE.insert().values(**row).returning(TABLE.c.id)).scalar_one()) for row in rows]

    def add_comment(self, feedback_id: int, comment: str) -> bool:
        """Attach (or replace) the comment of a stored rating; ``False`` if there is no such rating."""
        comment = comment.strip()[:MAX_COMMENT_CHARS]
        if not self.sqlite:
            comment = _postgres_text(comment)
        update = TABLE.update().where(TABLE.c.id == feedback_id).values(comment=comment)
        with self._begin() as db:
            return db.execute(update).rowcount == 1

    def purge(self, now: datetime | None = None) -> int:
        """Delete rows older than the retention period; returns how many went."""
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=self.retention_days)
        delete = TABLE.delete().where(TABLE.c.created_at < cutoff.isoformat(timespec="seconds"))
        with self._begin() as db:
            return int(db.execute(delete).rowcount)

    def raw_rows(self) -> list[dict[str, Any]]:
        """Every row as the table holds it, oldest first (for copying to another store)."""
        with self._begin(write=False) as db:
            return [dict(row._mapping) for row in db.execute(TABLE.select().order_by(TABLE.c.id))]

    def rows(self, *, rating: int | None = None) -> list[StoredFeedback]:
        """Stored ratings, oldest first; only thumbs-down with ``rating=-1``."""
        query = TABLE.select().order_by(TABLE.c.id)
        if rating is not None:
            query = query.where(TABLE.c.rating == rating)
        with self._begin(write=False) as db:
            found = [dict(row._mapping) for row in db.execute(query)]
        for record in found:
            record["history"] = json.loads(record["history"])
            record["citations"] = json.loads(record["citations"])
            record["verified"] = bool(record["verified"])
        return [StoredFeedback(**record) for record in found]

    def count(self) -> int:
        """How many ratings are stored."""
        with self._begin(write=False) as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(TABLE)).scalar_one())

    def close(self) -> None:
        """Close (SQLite: checkpoint the journal into the main file first)."""
        with self._lock:
            if self.sqlite:
                with self._engine.connect() as db:
                    db.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
            self._engine.dispose()
