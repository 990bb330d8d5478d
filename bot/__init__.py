"""A grounded Q&A engine for knee pain after the leg press.

The public API: ``ask(question, history)`` → ``Answer``, the ``Engine`` behind it, and ``Settings``.
Everything else is internal and may move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.contract import Answer, Status
from bot.settings import Settings
from bot.version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bot.engine import Engine

__all__ = ["Answer", "Engine", "Settings", "Status", "__version__", "ask"]


def ask(question: str, history: Iterable[Any] | None = None) -> Answer:
    """Answer ``question`` from the corpus; ``history`` is a list of ``{"role", "content"}`` turns."""
    from bot.engine import default_engine  # the model and index load on first use, not on import

    return default_engine().ask(question, history)


def __getattr__(name: str) -> Any:
    # ``bot.Engine`` loads the engine's modules (numpy, LangChain) only when asked for: `import bot.settings`
    # (every command) must stay fast.
    if name == "Engine":
        from bot.engine import Engine

        return Engine
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
