"""Thumbs up/down on answers: kept in SQLite (or PostgreSQL), and exported as eval cases for the QA team.

Only the conversation text is stored — no IP address, no browser details. Each row says whether its answer
is verified: the page's own record, or an API rating whose signed answer id checked out (rows from before
that check are not). The export escapes markup and tags what isn't verified. The parts: ``records`` (what a
rating is), ``store`` (the table, SQLite or PostgreSQL), ``export`` (eval cases), ``migrate`` (SQLite to
PostgreSQL).
"""

from __future__ import annotations

from bot.feedback.export import defang, eval_cases, export_yaml
from bot.feedback.migrate import migrate
from bot.feedback.records import EXPECT, MAX_COMMENT_CHARS, Feedback, StoredFeedback
from bot.feedback.store import FILENAME, STORE_ERRORS, FeedbackStore

__all__ = [
    "EXPECT",
    "FILENAME",
    "MAX_COMMENT_CHARS",
    "STORE_ERRORS",
    "Feedback",
    "FeedbackStore",
    "StoredFeedback",
    "defang",
    "eval_cases",
    "export_yaml",
    "migrate",
]
