"""Command line: ``python -m bot index``, ``ask`` and ``eval``; a thin shell over the engine."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.settings import get_settings

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


def configure_logging() -> None:
    """Log our notices to stderr at ``BOT_LOG_LEVEL`` (JSON lines with ``BOT_LOG_JSON=1``)."""
    from bot.observability import configure_logging as configure

    settings = get_settings()
    configure(settings.log_level, as_json=settings.log_json)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def load_engine() -> Engine:
    """The engine, or a clear error and exit code 2 when the corpus, model or index can't be used."""
    from bot.content.corpus import CorpusError
    from bot.engine.engine import Engine
    from bot.index import IndexUnavailable
    from bot.models.embedding import EmbeddingModelError

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
    from bot.content.corpus import CorpusError
    from bot.index import build_index, discard_index
    from bot.models.embedding import EmbeddingModelError, load_embeddings

    settings = get_settings()
    try:
        if rebuild:
            discard_index(settings)
        embeddings = load_embeddings(settings.embedding_model)
        report = build_index(settings, embeddings, show_progress=sys.stderr.isatty())
    except (CorpusError, EmbeddingModelError) as error:
        raise _fail(str(error)) from None
    typer.echo(
        f"Index v{report.version} in {settings.index_dir}: {report.chunk_count} passages ({report.added} new, "
        f"{report.removed} removed, {report.kept} unchanged; {report.embedded_texts} texts embedded) "
        f"in {report.seconds:.1f} s."
    )


# -- eval: the QA team's harness (bot/evaluate/) ---------------------------------------------------

eval_app = typer.Typer(
    help="Run the question sets through the engine: metrics, reports and the regression gate.",
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(eval_app, name="eval")


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated option values as one list."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


@eval_app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    set_paths: Annotated[
        list[str] | None,
        typer.Option("--set", help="A set file or name (core → eval/sets/core.yaml); repeat it. Default: every set."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Report folder. Default: eval/reports/<UTC timestamp>/.")
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tags", help="Only cases with one of these tags (repeat, or a,b).")
    ] = None,
    compare: Annotated[
        Path | None, typer.Option("--compare", help="An earlier report folder: print metric deltas and flips.")
    ] = None,
    thresholds: Annotated[
        Path | None, typer.Option("--thresholds", help="Minimums per set and metric. Default: eval/thresholds.yaml.")
    ] = None,
    composers: Annotated[
        list[str] | None,
        typer.Option(
            "--composer",
            help="Compose with this (extractive, local, or a LangChain spec such as ollama:llama3.2); repeat it "
            "to compare side by side. Default: BOT_COMPOSER.",
        ),
    ] = None,
) -> None:
    """Run every case through the engine, write the five reports and apply the gate (exit 1 if it fails).

    With several ``--composer``, each runs every case, reports go to ``<out>/<composer>/``, a side-by-side
    table compares them, and the gate applies to each.
    """
    if ctx.invoked_subcommand is not None:
        return
    configure_logging()
    from bot.evaluate.gate import THRESHOLDS_FILE, ThresholdsError, check_gate, compare_runs, load_thresholds
    from bot.evaluate.loader import QuestionSetError, default_set_paths, load_question_sets, resolve_set_path
    from bot.evaluate.reports import (
        comparison_lines,
        composer_rows,
        default_out_dir,
        gate_lines,
        run_info,
        summary_rows,
        text_table,
        write_reports,
    )
    from bot.evaluate.runner import run_evaluation

    settings = get_settings()
    try:
        paths = [resolve_set_path(p) for p in set_paths] if set_paths else default_set_paths()
        question_sets = load_question_sets(paths, corpus_dir=settings.corpus_dir)
        minimums = load_thresholds(thresholds or THRESHOLDS_FILE)
    except (QuestionSetError, ThresholdsError) as error:
        raise _fail(str(error)) from None
    if compare is not None and not (compare / "summary.json").is_file():
        raise _fail(f"--compare {compare}: no summary.json there (give the folder of an earlier run)")

    engine = load_engine()
    specs = composers or [settings.composer]
    run_started = None
    by_composer = {}
    failed_gate = False
    for spec in specs:
        composed = engine.with_composer(spec)
        if composed.composer != spec:
            typer.secho(f"{spec}: {composed.composer_problem}", err=True, fg=typer.colors.YELLOW)
        run = run_evaluation(composed, question_sets, tags=_split(tags), progress=sys.stderr.isatty())
        if not run.results:
            raise _fail(f"No case carries any of the tags {', '.join(_split(tags))}.")
        run.info = run_info(settings) | {"composer": composed.composer}
        summaries = run.set_summaries()
        by_composer[composed.composer if len(specs) == 1 else spec] = summaries
        gate = check_gate(summaries, minimums)
        comparison = None
        if compare is not None:
            try:
                comparison = compare_runs(compare, summaries, {r.name: r.passed for r in run.results})
            except ThresholdsError as error:
                raise _fail(str(error)) from None
        run_started = run_started or run.started_at
        base = out or default_out_dir(run_started)
        out_dir = base if len(specs) == 1 else base / spec.replace(":", "-").replace("/", "-")
        write_reports(run, gate, out_dir, comparison)

        if len(specs) > 1:
            typer.echo(f"\n== composer: {spec}")
        typer.echo(text_table(*summary_rows(summaries)))
        typer.echo(f"\n{len(run.results)} cases in {run.seconds:.1f} s; {len(run.failed)} failed.")
        for result in run.failed[:25]:
            typer.echo(f"  FAIL {result.name}: {'; '.join(result.failures)}")
        if len(run.failed) > 25:
            typer.echo(f"  … and {len(run.failed) - 25} more (see report.md)")
        if comparison is not None:
            typer.echo("\n" + "\n".join(comparison_lines(comparison)))
        typer.echo("\n" + "\n".join(gate_lines(gate)))
        typer.echo(f"Reports: {out_dir}/ (report.html, report.md, summary.json, results.jsonl, junit.xml)")
        failed_gate = failed_gate or not gate.passed
    if len(specs) > 1 or specs[0] != "extractive":
        typer.echo("\n" + text_table(*composer_rows(by_composer)))
    if failed_gate:
        raise typer.Exit(code=1)


@eval_app.command("add")
def add_case(
    set_name: Annotated[str, typer.Option("--set", help="The set to append to: a name (core) or a file.")],
    question: Annotated[str, typer.Option("--question", help="The question, as the user asked it.")],
    expect: Annotated[
        str, typer.Option("--expect", help="answer | escalate | refuse | not_found | invalid.")
    ] = "answer",
    gold_spans: Annotated[
        list[str] | None, typer.Option("--gold-span", help="Verbatim corpus text a good passage holds (repeat).")
    ] = None,
    must_include: Annotated[
        list[str] | None, typer.Option("--must-include", help='A key fact, alternatives split by "|" (repeat).')
    ] = None,
    must_not_include: Annotated[
        list[str] | None, typer.Option("--must-not-include", help="Text the reply must never contain (repeat).")
    ] = None,
    tags: Annotated[list[str] | None, typer.Option("--tags", help="Tags (repeat, or a,b).")] = None,
    case_id: Annotated[str | None, typer.Option("--id", help="The case id. Default: made from the question.")] = None,
    notes: Annotated[str | None, typer.Option("--notes", help="Why the case exists.")] = None,
) -> None:
    """Append a case to a set, validated against the schema and the corpus (comments and layout are kept)."""
    from bot.evaluate.authoring import append_case, parse_alternatives
    from bot.evaluate.loader import QuestionSetError, resolve_set_path

    settings = get_settings()
    fields = {
        "id": case_id,
        "question": question,
        "expect": expect,
        "gold_spans": gold_spans or [],
        "must_include": parse_alternatives(must_include or []),
        "must_not_include": must_not_include or [],
        "tags": _split(tags),
        "notes": notes,
    }
    try:
        path = resolve_set_path(set_name)
        case = append_case(path, fields, corpus_dir=settings.corpus_dir)
    except QuestionSetError as error:
        raise _fail(str(error)) from None
    typer.echo(f"Added case {case.id!r} to {path}. Run it: python -m bot eval --set {path}")


feedback_app = typer.Typer(help="Ratings people gave the answers.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    output: Annotated[
        str, typer.Option("--output", "-o", help='File to write, or "-" for standard output.')
    ] = "eval/reports/feedback.yaml",
) -> None:
    """Write the thumbs-down answers as an eval question set (the format of eval/sets/*.yaml)."""
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
        typer.secho(
            f"Something went wrong ({error.__class__.__name__}). Run with BOT_LOG_LEVEL=DEBUG for details.",
            err=True,
            fg=typer.colors.RED,
        )
        raise SystemExit(1) from None
