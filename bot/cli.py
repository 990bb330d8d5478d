"""Command line: ``python -m bot index`` and ``python -m bot ask``; a thin shell over the engine."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.settings import get_settings

if TYPE_CHECKING:
    from bot.pipeline import Engine
    from bot.types import Answer

app = typer.Typer(
    help="Grounded answers about knee pain after the leg press.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("bot.cli")


def configure_logging() -> None:
    """Log our notices to stderr at ``BOT_LOG_LEVEL``; keep chatty libraries quiet."""
    logging.basicConfig(level=get_settings().log_level, format="%(message)s", stream=sys.stderr)
    for noisy in ("sentence_transformers", "transformers", "chromadb", "httpx", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def load_engine() -> Engine:
    """The engine, or a clear error and exit code 2 when the corpus, model or index can't be used."""
    from bot.corpus import CorpusError
    from bot.embedding import EmbeddingModelError
    from bot.index import IndexUnavailable
    from bot.pipeline import Engine

    try:
        return Engine.load(get_settings(), show_progress=sys.stderr.isatty())
    except (CorpusError, EmbeddingModelError, IndexUnavailable) as error:
        raise _fail(str(error)) from None


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
            answer = engine.ask(request["question"], request.get("history"))
        else:
            answer = engine.reject(line.rstrip("\n"), "request")
        sys.stdout.write(answer.model_dump_json() + "\n")
        sys.stdout.flush()


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
    answer = engine.ask(question)
    typer.echo(answer.model_dump_json(indent=2) if as_json else render_text(answer))


@app.command()
def index(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Discard the index and embed everything again.")] = False,
) -> None:
    """Build or update the index from the corpus (only new or changed passages are embedded)."""
    configure_logging()
    import shutil

    from bot.corpus import CorpusError
    from bot.embedding import EmbeddingModelError, load_embeddings
    from bot.index import build_index

    settings = get_settings()
    try:
        if rebuild:
            shutil.rmtree(settings.index_dir, ignore_errors=True)
        embeddings = load_embeddings(settings.embedding_model)
        report = build_index(settings, embeddings, show_progress=sys.stderr.isatty())
    except (CorpusError, EmbeddingModelError) as error:
        raise _fail(str(error)) from None
    typer.echo(
        f"Index v{report.version} in {settings.index_dir}: {report.chunk_count} passages "
        f"({report.added} embedded, {report.removed} removed, {report.kept} unchanged) in {report.seconds:.1f} s."
    )


feedback_app = typer.Typer(help="Ratings people gave the answers.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    output: Annotated[
        str, typer.Option("--output", "-o", help='File to write, or "-" for standard output.')
    ] = "eval/reports/feedback.yaml",
) -> None:
    """Write the thumbs-down answers as an eval question set (the format of eval/sets/*.yaml)."""
    from pathlib import Path

    from bot.feedback import FILENAME, FeedbackStore, export_yaml

    settings = get_settings()
    if not (settings.data_dir / FILENAME).exists():
        raise _fail(f"No feedback has been stored yet (looked for {settings.data_dir / FILENAME}).")
    store = FeedbackStore.open(settings.data_dir, retention_days=settings.feedback_retention_days)
    try:
        rows = store.rows(rating=-1)
    finally:
        store.close()
    text = export_yaml(rows)
    if output == "-":
        typer.echo(text, nl=False)
        return
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    typer.echo(f"{len(rows)} thumbs-down case(s) written to {target}.")


def main() -> None:
    """Entry point of ``python -m bot``: an unexpected failure is one clear line, never a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as error:
        log.debug("unexpected failure", exc_info=True)
        typer.secho(f"Something went wrong ({error.__class__.__name__}). Run with BOT_LOG_LEVEL=DEBUG for details.",
                    err=True, fg=typer.colors.RED)  # fmt: skip
        raise SystemExit(1) from None
