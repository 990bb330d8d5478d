"""What every command of the command line shares: logging, loading the engine, one way to stop with a clear error."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from bot import observability
from bot.settings import get_settings

if TYPE_CHECKING:
    from bot.engine.engine import Engine


def fail(message: str) -> typer.Exit:
    """Print ``message`` in red on standard error; raise the result to exit with code 2 (never a traceback)."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def configure_logging() -> None:
    """Log our notices to stderr at ``BOT_LOG_LEVEL`` (JSON lines with ``BOT_LOG_JSON=1``)."""
    settings = get_settings()
    observability.configure_logging(settings.log_level, as_json=settings.log_json)


def load_engine() -> Engine:
    """The engine, or a clear error and exit code 2 when the corpus, model or index can't be used."""
    # Imported here, not at the top: the engine pulls in torch, Chroma and LangChain (seconds), which
    # `--help` and the feedback export don't need.
    from bot.content.corpus import CorpusError
    from bot.engine.engine import Engine
    from bot.index import IndexUnavailable
    from bot.models.embedding import EmbeddingModelError

    try:
        return Engine.load(get_settings(), show_progress=sys.stderr.isatty())
    except (CorpusError, EmbeddingModelError, IndexUnavailable) as error:
        raise fail(str(error)) from None
