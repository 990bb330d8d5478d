"""One eval run as ``python -m bot eval`` makes it: plan it (sets, thresholds, options), then run every composer.

``plan_suite`` reads and checks everything that can be wrong with the request before the caller loads the
engine, so a typo in a set file fails in a second rather than after the model loads. ``run_suite`` runs the
cases once per composer, gates each run, compares it with an earlier run and writes its reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.evaluate.compare import Comparison, EarlierRun, EarlierRunError, compare_runs, read_earlier_run
from bot.evaluate.gate import THRESHOLDS_FILE, GateResult, Threshold, ThresholdsError, check_gate, load_thresholds
from bot.evaluate.loader import QuestionSet, QuestionSetError, default_set_paths, load_question_sets, resolve_set_path
from bot.evaluate.metrics import GroupSummary
from bot.evaluate.reports import default_out_dir, run_info, write_reports
from bot.evaluate.runner import Asker, EvaluationRun, run_evaluation, select_cases
from bot.settings import Settings

#: The composer whose runs need no side-by-side table when it is the only one.
EXTRACTIVE = "extractive"


class SuiteError(ValueError):
    """The run cannot be made as asked; the message names the file, case, option or tag."""


class ComposingAsker(Asker, Protocol):
    """An engine that can answer with another composer (``Engine``): its name, and why a spec wasn't usable."""

    composer: str
    composer_problem: str | None

    def with_composer(self, spec: str) -> ComposingAsker:
        """This engine answering with ``spec`` (or extractively, saying why in ``composer_problem``)."""
        ...


@dataclass(frozen=True)
class SuitePlan:
    """A checked request: the loaded sets and minimums, and where the reports go."""

    settings: Settings
    question_sets: tuple[QuestionSet, ...]
    thresholds: tuple[Threshold, ...]
    tags: tuple[str, ...]
    composers: tuple[str, ...]
    out: Path | None = None
    earlier: EarlierRun | None = None


@dataclass(frozen=True)
class ComposerRun:
    """One composer's run: its results, gate, comparison and report folder."""

    spec: str
    composer: str
    run: EvaluationRun
    summaries: dict[str, GroupSummary]
    gate: GateResult
    comparison: Comparison | None
    out_dir: Path


@dataclass(frozen=True)
class SuiteResult:
    """Every composer's run, in the order asked."""

    runs: tuple[ComposerRun, ...]

    @property
    def passed(self) -> bool:
        """Whether every run passed its gate."""
        return all(r.gate.passed for r in self.runs)

    @property
    def by_composer(self) -> dict[str, dict[str, GroupSummary]]:
        """Per-set summaries keyed by composer: the one in use for a single run, else each ``--composer`` spec."""
        return {(r.composer if len(self.runs) == 1 else r.spec): r.summaries for r in self.runs}

    @property
    def side_by_side(self) -> bool:
        """Whether composers are worth a side-by-side table: several, or one that isn't extractive."""
        return len(self.runs) > 1 or self.runs[0].spec != EXTRACTIVE


def plan_suite(
    settings: Settings,
    *,
    set_paths: Sequence[str] = (),
    tags: Iterable[str] = (),
    thresholds: Path | None = None,
    compare: Path | None = None,
    composers: Sequence[str] = (),
    out: Path | None = None,
) -> SuitePlan:
    """Load and check the sets, the minimums and the tags, and read the earlier run to compare with.

    Args:
        settings: Where the corpus is (gold spans are checked against it), the default composer, run info.
        set_paths: Set files or names (``core``); every set when empty.
        tags: Run only the cases carrying one of these.
        thresholds: The minimums file; ``eval/thresholds.yaml`` by default.
        compare: An earlier run's report folder.
        composers: Composer specs, each running every case; ``settings.composer`` when empty.
        out: The report folder; ``eval/reports/<UTC time>/`` by default.

    Raises:
        SuiteError: A set, the thresholds, a tag or the earlier run's folder can't be used.
    """
    try:
        paths = [resolve_set_path(p) for p in set_paths] if set_paths else default_set_paths()
        question_sets = load_question_sets(paths, corpus_dir=settings.corpus_dir)
        minimums = load_thresholds(thresholds or THRESHOLDS_FILE)
    except (QuestionSetError, ThresholdsError) as error:
        raise SuiteError(str(error)) from error
    earlier = None
    if compare is not None:
        if not (compare / "summary.json").is_file():
            raise SuiteError(f"--compare {compare}: no summary.json there (give the folder of an earlier run)")
        try:
            earlier = read_earlier_run(compare)
        except EarlierRunError as error:
            raise SuiteError(str(error)) from error
    tags = tuple(tags)
    if not select_cases(question_sets, tags):
        raise SuiteError(f"No case carries any of the tags {', '.join(tags)}.")
    return SuitePlan(
        settings=settings,
        question_sets=tuple(question_sets),
        thresholds=tuple(minimums),
        tags=tags,
        composers=tuple(composers) or (settings.composer,),
        out=out,
        earlier=earlier,
    )


def run_suite(
    engine: ComposingAsker,
    plan: SuitePlan,
    *,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
    on_run: Callable[[ComposerRun], None] | None = None,
    concurrency: int = 1,
    server: Callable[[], Mapping[str, Any]] | None = None,
) -> SuiteResult:
    """Run every case once per composer; gate, compare and write the reports of each run.

    With several composers each run's reports go to ``<out>/<composer>/``, all under the first run's time.

    Args:
        engine: The engine (``Engine``), or anything that answers and switches composers the same way.
        plan: What ``plan_suite`` checked.
        progress: Show a progress bar on standard error.
        warn: Told when a composer can't be used (the run goes on extractively).
        on_run: Given each composer's run as soon as its reports are written.
        concurrency: Cases asked at the same time.
        server: For a run against a server (``--url``): what the report's header records about it (its health,
            route, waits), asked once the cases are answered; the local engine settings are left out.

    Raises:
        RunStopped: The asker could not go on (a remote run: see ``bot.evaluate.remote``); nothing is written.
    """
    runs: list[ComposerRun] = []
    for spec in plan.composers:
        composed = engine.with_composer(spec)
        if composed.composer != spec and warn is not None:
            warn(f"{spec}: {composed.composer_problem}")
        run = run_evaluation(composed, plan.question_sets, tags=plan.tags, progress=progress, concurrency=concurrency)
        run.info = run_info(plan.settings, engine_settings=server is None) | {"composer": composed.composer}
        if server is not None:
            run.info["server"] = {**server(), "concurrency": concurrency}
        summaries = run.set_summaries()
        gate = check_gate(summaries, list(plan.thresholds))
        comparison = None
        if plan.earlier is not None:
            comparison = compare_runs(plan.earlier, summaries, [r.to_record() for r in run.results])
        base = plan.out or default_out_dir(runs[0].run.started_at if runs else run.started_at)
        out_dir = base if len(plan.composers) == 1 else base / spec.replace(":", "-").replace("/", "-")
        write_reports(run, gate, out_dir, comparison)
        runs.append(ComposerRun(spec, composed.composer, run, summaries, gate, comparison, out_dir))
        if on_run is not None:
            on_run(runs[-1])
    return SuiteResult(tuple(runs))
