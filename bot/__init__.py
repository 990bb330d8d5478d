"""A grounded Q&A engine for knee pain after the leg press.

The whole public API: ``ask(question, history)`` → ``Answer``, and ``Settings``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.settings import Settings
from bot.types import Answer, Status

__all__ = ["Answer", "Settings", "Status", "ask"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from collections.abc import Iterable


def ask(question: str, history: Iterable[Any] | None = None) -> Answer:
    """Answer ``question`` from the corpus; ``history`` is a list of ``{"role", "content"}`` turns."""
    from bot.pipeline import ask as _ask  # the model and index load on first use, not on import

    return _ask(question, history)
