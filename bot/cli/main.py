"""Command line: ``python -m bot index``, ``ask``, ``eval`` (``bot.cli.eval``) and ``feedback`` (``bot.cli.feedback``).

A thin shell over the engine. The engine is imported inside the commands that need it, so ``--help`` stays fast
and ``ask`` never imports the web stack.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from bot.cli.common import configure_logging, load_engine
from bot.cli.common import fail as _fail  # the name ask and index call it by
from bot.cli.eval import eval_app
from bot.cli.feedback import feedback_app
from bot.contract import json_line, make_readable, readable_request
from bot.settings import get_settings, setting_errors

if TYPE_CHECKING:
    from bot.contract import Answer
    from bot.engine.engine import Engine

app = typer.Typer(
    help="Grounded answers about knee pain after the leg press.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("bot.cli.main")


def render_text(answer: Answer) -> str:
    """An answer for a terminal: the reply, its numbered sources, then the disclaimer."""
    body = answer.answer.removesuffix(answer.disclaimer).rstrip().removesuffix("---").rstrip()
    lines = [body]
    if answer.citations:
        lines += ["", "Sources:"]
        for citation in answer.citations:
            quote = " ".join(citation.quote.split())
            lines.append(f"  [{citation.n}] {citation.title} › {citation.section}")
            lines.append(f"      “{quote if len(quote) <= 160 else quote[:157] + '…'}”")
    lines += ["", answer.disclaimer]
    return "\n".join(lines)


def _answer_lines(engine: Engine, lines: Any) -> None:
    """One JSON answer per JSON line read; a line that can't be read gets an ``invalid`` answer, not a crash."""
    for line in lines:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError:
            request = None
        if isinstance(request, dict) and isinstance(request.get("question"), str):
            answer = _ask(engine, request["question"], request.get("history"))
        else:
            answer = engine.reject(make_readable(line.rstrip("\n")), "request")
        sys.stdout.write(json_line(answer) + "\n")  # U+2028/U+2029 escaped: readers split lines there
        sys.stdout.flush()


def _ask(engine: Engine, question: str, history: Any = None) -> Answer:
    """``engine.ask``, except text that can't be encoded (a lone surrogate) is an ``unreadable`` invalid answer."""
    if not readable_request(question, history):
        return engine.reject(make_readable(question), "unreadable")
    return engine.ask(question, history)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help='The question, or "-" to read JSON lines from standard input.')],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full JSON answer contract.")] = False,
) -> None:
    """Answer a question from the articles (builds the index first if there is none)."""
    configure_logging()
    engine = load_engine()
    if question == "-":
        if not as_json:
            raise _fail("Reading questions from standard input needs --json: python -m bot ask --json -")
        _answer_lines(engine, sys.stdin)
        return
    answer = _ask(engine, question)
    typer.echo(answer.model_dump_json(indent=2) if as_json else render_text(answer))


@app.command()
def index(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Discard the index and embed everything again.")] = False,
) -> None:
    """Build or update the index from the corpus (only new or changed passages are embedded)."""
    configure_logging()
    from bot.content.corpus import CorpusError
    from bot.index import build_index, discard_index
    from bot.models.embedding import EmbeddingModelError, embeddings_for

    settings = get_settings()
    try:
        if rebuild:
            discard_index(settings)
        embeddings = embeddings_for(settings, threads=0, batching=False)  # every core, one large call at a time
        report = build_index(settings, embeddings, show_progress=sys.stderr.isatty())
    except (CorpusError, EmbeddingModelError) as error:
        raise _fail(str(error)) from None
    typer.echo(
        f"Index v{report.version} in {settings.index_dir}: {report.chunk_count} passages ({report.added} new, "
        f"{report.removed} removed, {report.kept} unchanged; {report.embedded_texts} texts embedded) "
        f"in {report.seconds:.1f} s."
    )


# -- the QA team's harness and the feedback export: their own modules ---------------------------------

app.add_typer(eval_app, name="eval")
app.add_typer(feedback_app, name="feedback")


def main() -> None:
    """Entry point of ``python -m bot``: an unexpected failure is one clear line, never a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as error:
        if isinstance(error, ValidationError) and error.title == "Settings":  # a bad BOT_* setting: a line each
            for line in setting_errors(error):
                typer.secho(line, err=True, fg=typer.colors.RED)
            raise SystemExit(2) from None
        log.debug("unexpected failure", exc_info=True)
        typer.secho(
            f"Something went wrong ({error.__class__.__name__}). Run with BOT_LOG_LEVEL=DEBUG for details.",
            err=True,
            fg=typer.colors.RED,
        )
        raise SystemExit(1) from None
