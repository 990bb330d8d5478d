"""Run question sets through ``Engine.ask`` — the same call the chat page makes — and record every reply."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from bot.contract import Answer
from bot.evaluate.loader import Case, QuestionSet
from bot.evaluate.metrics import CaseMetrics, GroupSummary, crashed_case, measure_case, summarize

#: The name of the whole run in summaries and thresholds.
ALL = "all"


class RunStopped(Exception):
    """The asker cannot go on (its server is unreachable, refuses, or asks to wait too long): the run stops.

    Unlike any other exception, it is not recorded as a crash of the case: nothing was measured.
    """


class Asker(Protocol):
    """Anything that answers like ``Engine.ask``."""

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        """Answer ``question`` in the context of ``history``."""
        ...


@dataclass
class CaseResult:
    """One case, the reply to its scored question, and the metrics measured on that reply."""

    set_name: str
    case: Case
    answer: Answer | None
    history: list[dict[str, str]]
    metrics: CaseMetrics

    @property
    def name(self) -> str:
        """``set/id``: how reports, JUnit and ``--compare`` name the case."""
        return f"{self.set_name}/{self.case.id}"

    @property
    def failures(self) -> list[str]:
        """Why the case fails (empty when it passes)."""
        return self.metrics.failures(self.case)

    @property
    def passed(self) -> bool:
        """Whether every pass rule holds."""
        return not self.failures

    def to_record(self) -> dict[str, Any]:
        """The line of ``results.jsonl``: the case, the full ``ask`` JSON, every metric, the verdict."""
        return {
            "set": self.set_name,
            "id": self.case.id,
            "passed": self.passed,
            "failures": self.failures,
            "case": self.case.to_dict(),
            "history": self.history,
            "answer": self.answer.model_dump(mode="json") if self.answer is not None else None,
            "metrics": self.metrics.to_dict(),
        }


@dataclass
class EvaluationRun:
    """Every case result of one run, with when it started and how long it took."""

    results: list[CaseResult]
    sets: list[QuestionSet]
    started_at: datetime
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    def set_summaries(self) -> dict[str, GroupSummary]:
        """Metrics per set, then for the whole run under ``all``."""
        summaries = {
            s.name: summarize([(r.case, r.metrics) for r in self.results if r.set_name == s.name])
            for s in self.sets
            if any(r.set_name == s.name for r in self.results)
        }
        summaries[ALL] = summarize([(r.case, r.metrics) for r in self.results])
        return summaries

    def tag_summaries(self) -> dict[str, GroupSummary]:
        """Metrics per tag across every set, tags in name order."""
        tags = sorted({tag for r in self.results for tag in r.case.tags})
        return {tag: summarize([(r.case, r.metrics) for r in self.results if tag in r.case.tags]) for tag in tags}

    @property
    def failed(self) -> list[CaseResult]:
        """The cases that did not pass, in run order."""
        return [r for r in self.results if not r.passed]


def run_case(engine: Asker, case: Case, *, set_name: str, disclaimer: str) -> CaseResult:
    """Ask a case's question (a conversation turn by turn, each reply fed back as history) and score the last reply.

    The metrics are measured on the reply as recorded (its JSON form, read back), and the latency is the wall
    time of the scored call. An exception from the engine is recorded as a crash of this case; it never stops
    the run.
    """
    history: list[dict[str, str]] = []
    latency_ms = 0.0
    try:
        for turn in case.earlier_turns:
            reply = engine.ask(turn, list(history))
            history += [{"role": "user", "content": turn}, {"role": "assistant", "content": reply.answer}]
        started = time.perf_counter()
        reply, first_text_ms = _scored_reply(engine, case.scored_question, list(history), started)
        latency_ms = (time.perf_counter() - started) * 1000
        recorded = Answer.model_validate(reply.model_dump(mode="json"))
    except RunStopped:
        raise
    except Exception as error:
        return CaseResult(set_name, case, None, history, crashed_case(case, error, latency_ms=latency_ms))
    metrics = measure_case(case, recorded, disclaimer=disclaimer, latency_ms=latency_ms, first_text_ms=first_text_ms)
    return CaseResult(set_name, case, recorded, history, metrics)


def _scored_reply(
    engine: Asker, question: str, history: list[dict[str, str]], started: float
) -> tuple[Answer, float | None]:
    """The reply, and when its first piece arrived if the engine streams (as the chat page sees it)."""
    stream = getattr(engine, "stream", None)
    if stream is None:
        return engine.ask(question, history), None
    first: float | None = None
    for piece in stream(question, history):
        if isinstance(piece, Answer):
            return piece, first
        if first is None and piece:
            first = (time.perf_counter() - started) * 1000
    raise RuntimeError("the stream ended without an answer")


def select_cases(question_sets: Sequence[QuestionSet], tags: Iterable[str] | None) -> list[tuple[QuestionSet, Case]]:
    """The cases to run: all of them, or those carrying any of ``tags``."""
    wanted = set(tags or ())
    return [(s, c) for s in question_sets for c in s.cases if not wanted or wanted & set(c.tags)]


def run_evaluation(
    engine: Asker,
    question_sets: Sequence[QuestionSet],
    *,
    disclaimer: str | None = None,
    tags: Iterable[str] | None = None,
    progress: bool = False,
    concurrency: int = 1,
) -> EvaluationRun:
    """Run every selected case through ``engine.ask``; results in set order, whatever order they finish in.

    Args:
        engine: The engine (``Engine``), or anything with the same ``ask``.
        question_sets: The loaded sets.
        disclaimer: The disclaimer every reply must end with; the product's own by default.
        tags: Run only the cases carrying one of these tags.
        progress: Show a progress bar on standard error.
        concurrency: Cases asked at the same time (each conversation's turns stay in order).

    Raises:
        RunStopped: The asker could not go on; the cases not yet asked are not asked.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    if disclaimer is None:
        from bot.policy import DISCLAIMER

        disclaimer = DISCLAIMER
    selected = select_cases(question_sets, tags)
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    from tqdm import tqdm

    with tqdm(total=len(selected), desc="eval", unit="case", disable=not progress, leave=False) as bar:

        def one(question_set: QuestionSet, case: Case) -> CaseResult:
            result = run_case(engine, case, set_name=question_set.name, disclaimer=disclaimer)
            bar.set_postfix_str(result.name[:40], refresh=False)
            bar.update()
            return result

        if concurrency == 1:
            results = [one(question_set, case) for question_set, case in selected]
        else:
            results = _run_concurrently(one, selected, concurrency)
    ran = {s.name for s, _ in selected}
    return EvaluationRun(
        results=results,
        sets=[s for s in question_sets if s.name in ran],
        started_at=started_at,
        seconds=round(time.perf_counter() - started, 3),
    )


def _run_concurrently(
    one: Callable[[QuestionSet, Case], CaseResult], selected: Sequence[tuple[QuestionSet, Case]], concurrency: int
) -> list[CaseResult]:
    """``one`` over every case on ``concurrency`` threads; the first ``RunStopped`` cancels what hasn't started."""
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eval") as pool:
        futures = [pool.submit(one, question_set, case) for question_set, case in selected]
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        stopped = next((f.exception() for f in done if f.exception() is not None), None)
        if stopped is not None:
            for future in futures:
                future.cancel()
            raise stopped
        return [future.result() for future in futures]
