"""Copying ratings from one store to another: ``bot feedback migrate --to URL`` (SQLite into PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.feedback.store import FeedbackStore

#: What makes a rating the same one in both stores (ids differ: the target numbers its own rows).
_SAME = ("created_at", "rating", "question", "answer", "channel", "engine_version")


@dataclass(frozen=True)
class Copied:
    """How many rows were copied, and how many the target held already (an earlier run's)."""

    copied: int
    already_there: int


def migrate(source: FeedbackStore, target: FeedbackStore) -> Copied:
    """Copy every row of ``source`` into ``target`` in one transaction, but those it already holds."""
    present = {tuple(row[name] for name in _SAME) for row in target.raw_rows()}
    new = []
    for row in source.raw_rows():
        if tuple(row[name] for name in _SAME) not in present:
            new.append({name: value for name, value in row.items() if name != "id"})
    target.insert(new)
    return Copied(copied=len(new), already_there=len(source.raw_rows()) - len(new))
