"""``python -m bot eval`` and ``eval add``: the QA team's harness (``bot/evaluate/``) from the command line.

The harness is imported inside the commands, not at the top: ``bot.cli.main`` imports this module to register
them, and ``python -m bot --help`` and ``ask`` must stay fast and work without the ``eval`` extra (only
``bot.evaluate``'s own ``__init__``, which imports none of it, is imported here).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import configure_logging, fail, load_engine
from bot.evaluate import INSTALL_EXTRA, missing_modules
from bot.settings import get_settings

if TYPE_CHECKING:
    from bot.evaluate.remote import ServerOptions
    from bot.evaluate.suite import ComposerRun

#: At most this many failing cases are listed on the console (report.md lists them all).
FAILURES_SHOWN = 25
#: ``--url``: cases asked at once by default (a server's BOT_WORKER_THREADS default), and the most allowed.
REMOTE_CONCURRENCY, MAX_CONCURRENCY = 4, 32
DEFAULT_MAX_WAIT, DEFAULT_TIMEOUT = 300.0, 60.0
REMOTE = "Against a running server"

eval_app = typer.Typer(
    help="Run the question sets through the engine: metrics, reports and the regression gate.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


def require_eval_extra() -> None:
    """Stop with one line saying how to install the ``eval`` extra when a module of it is missing."""
    missing = missing_modules()
    if missing:
        raise fail(f"python -m bot eval needs the eval extra ({', '.join(missing)} missing): {INSTALL_EXTRA}")


def split_values(values: list[str] | None) -> list[str]:
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
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Ask a running coach at this address through its public API instead of "
            "loading the engine (e.g. https://coach-staging.gym.example).",
            rich_help_panel=REMOTE,
        ),
    ] = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream/--no-stream",
            help="With --url: the streaming route, as the widget asks (default), "
            "or the whole reply (POST /api/chat; with --openai, stream: false).",
            rich_help_panel=REMOTE,
        ),
    ] = True,
    openai: Annotated[
        bool,
        typer.Option("--openai", help="With --url: ask through POST /v1/chat/completions.", rich_help_panel=REMOTE),
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=MAX_CONCURRENCY,
            help=f"Cases asked at the same time. Default: {REMOTE_CONCURRENCY} with --url, else 1.",
        ),
    ] = None,
    headers: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            help="With --url: 'Name: value' sent with every request, e.g. 'Authorization: Bearer <key>' (repeat it).",
            rich_help_panel=REMOTE,
        ),
    ] = None,
    max_wait: Annotated[
        float,
        typer.Option(
            "--max-wait",
            help="With --url: seconds one request may wait in all on 429/503 (after their "
            "Retry-After) before the run stops.",
            rich_help_panel=REMOTE,
        ),
    ] = DEFAULT_MAX_WAIT,
    cacert: Annotated[
        Path | None,
        typer.Option(
            "--cacert", help="With --url: trust the CA certificate(s) in this PEM file.", rich_help_panel=REMOTE
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="With --url: seconds to wait for a connection or the next piece of a reply.",
            rich_help_panel=REMOTE,
        ),
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Run every case through the engine, write the five reports and apply the gate (exit 1 if it fails).

    With several ``--composer``, each runs every case, reports go to ``<out>/<composer>/``, a side-by-side
    table compares them, and the gate applies to each. With ``--url`` the cases go to a running coach over
    HTTP and the engine is never loaded; a server that can't be evaluated stops the run (exit 3).
    """
    if ctx.invoked_subcommand is not None:
        return
    configure_logging()
    require_eval_extra()
    # The harness, only once it is known to be installed (see the module docstring).
    from bot.evaluate.reports import composer_rows, text_table
    from bot.evaluate.runner import RunStopped
    from bot.evaluate.suite import SuiteError, plan_suite, run_suite

    remote_only = {"--no-stream": not stream, "--openai": openai, "--header": bool(headers), "--cacert": cacert,
                   "--max-wait": max_wait != DEFAULT_MAX_WAIT, "--timeout": timeout != DEFAULT_TIMEOUT}  # fmt: skip
    if url is None and any(remote_only.values()):
        given = [name for name, value in remote_only.items() if value]
        raise fail(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only with --url.")
    if url is not None and composers:
        raise fail("--composer applies in process: a server answers with its own composer (BOT_COMPOSER there).")
    try:
        plan = plan_suite(get_settings(), set_paths=set_paths or [], tags=split_values(tags), thresholds=thresholds,
                          compare=compare, composers=composers or [], out=out)  # fmt: skip
        progress = sys.stderr.isatty()

        def on_run(run: ComposerRun) -> None:
            typer.echo("\n".join(run_lines(run, several=len(plan.composers) > 1)))

        if url is None:
            result = run_suite(load_engine(), plan, progress=progress, warn=warn, on_run=on_run,
                               concurrency=concurrency or 1)  # fmt: skip
        else:
            from bot.evaluate.remote import Route
            from bot.evaluate.remote.run import run_remote

            server = server_options(url, headers=headers or [], cacert=cacert, max_wait=max_wait, timeout=timeout)
            result = run_remote(plan, server, Route.choose(openai=openai, stream=stream), progress=progress,
                                warn=warn, on_run=on_run, concurrency=concurrency or REMOTE_CONCURRENCY)  # fmt: skip
    except SuiteError as error:
        raise fail(str(error)) from None
    except RunStopped as error:
        typer.secho(f"Stopped: {error}\nNothing was scored; no report written.", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=3) from None
    if result.side_by_side:
        typer.echo("\n" + text_table(*composer_rows(result.by_composer)))
    if not result.passed:
        raise typer.Exit(code=1)


def server_options(url: str, *, headers: list[str], cacert: Path | None, max_wait: float,
                   timeout: float) -> ServerOptions:  # fmt: skip
    """The checked ``--url`` options, or a clear error and exit code 2."""
    from bot.evaluate.remote import ServerOptions, parse_header

    try:
        return ServerOptions(url, headers=tuple(parse_header(h) for h in headers), cacert=cacert, timeout=timeout,
                             max_wait=max_wait)  # fmt: skip
    except ValueError as error:
        raise fail(str(error)) from None


def warn(message: str) -> None:
    """A notice on standard error, in yellow: the run goes on."""
    typer.secho(message, err=True, fg=typer.colors.YELLOW)


def run_lines(composer_run: ComposerRun, *, several: bool) -> list[str]:
    """What the console shows of one composer's run: the table, failures, comparison, gate, report folder."""
    # Imported here for the reason the harness is (module docstring); the command has loaded them already.
    from bot.evaluate.answer_diff import CONSOLE_DIFFS
    from bot.evaluate.compare import comparison_lines
    from bot.evaluate.provenance import header_lines
    from bot.evaluate.reports import gate_lines, summary_rows, text_table

    run = composer_run.run
    lines = [f"\n== composer: {composer_run.spec}"] if several else []
    lines += [text_table(*summary_rows(composer_run.summaries))]
    lines += [f"\n{len(run.results)} cases in {run.seconds:.1f} s; {len(run.failed)} failed."]
    lines += [f"  {line}" for line in header_lines(run)]
    lines += [f"  FAIL {result.name}: {'; '.join(result.failures)}" for result in run.failed[:FAILURES_SHOWN]]
    if len(run.failed) > FAILURES_SHOWN:
        lines.append(f"  … and {len(run.failed) - FAILURES_SHOWN} more (see report.md)")
    if composer_run.comparison is not None:
        comparison = composer_run.comparison
        lines.append("\n" + "\n".join(comparison_lines(comparison)))
        lines += comparison.answers.lines(str(comparison.old_dir), limit=CONSOLE_DIFFS)
    lines.append("\n" + "\n".join(gate_lines(composer_run.gate)))
    lines.append(f"Reports: {composer_run.out_dir}/ (report.html, report.md, summary.json, results.jsonl, junit.xml)")
    return lines


@eval_app.command("add")
def add_case(
    set_name: Annotated[str, typer.Option("--set", help="The set to append to: a name (core) or a file.")],
    question: Annotated[str, typer.Option("--question", help="The question, as the user asked it.")],
    expect: Annotated[
        str, typer.Option("--expect", help="answer | escalate | refuse | not_found | invalid | chat.")
    ] = "answer",
    gold_spans: Annotated[
        list[str] | None, typer.Option("--gold-span", help="Verbatim corpus text a good passage holds (repeat).")
    ] = None,
    lead: Annotated[
        list[str] | None,
        typer.Option("--lead", help="Verbatim corpus text the reply's first sentence must hold (repeat: any one)."),
    ] = None,
    relevant: Annotated[
        list[str] | None,
        typer.Option("--relevant", help="Verbatim corpus text an answer-relevant point may hold (repeat)."),
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
    require_eval_extra()
    # The harness, only once it is known to be installed (see the module docstring).
    from bot.evaluate.authoring import append_case, parse_alternatives
    from bot.evaluate.loader import QuestionSetError, resolve_set_path

    settings = get_settings()
    fields = {
        "id": case_id,
        "question": question,
        "expect": expect,
        "gold_spans": gold_spans or [],
        "lead": lead or [],
        "relevant": relevant or [],
        "must_include": parse_alternatives(must_include or []),
        "must_not_include": must_not_include or [],
        "tags": split_values(tags),
        "notes": notes,
    }
    try:
        path = resolve_set_path(set_name)
        case = append_case(path, fields, corpus_dir=settings.corpus_dir)
    except QuestionSetError as error:
        raise fail(str(error)) from None
    typer.echo(f"Added case {case.id!r} to {path}. Run it: python -m bot eval --set {path}")
