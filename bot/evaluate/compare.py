"""What changed since an earlier run (``--compare DIR``): metric deltas, cases that flipped, and every answer."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot.evaluate.answer_diff import AnswerDiff, diff_answers, read_results, record_name
from bot.evaluate.metrics import RATE_METRICS, GroupSummary


class EarlierRunError(ValueError):
    """The folder is not a readable eval report folder; the message names it."""


@dataclass(frozen=True)
class EarlierRun:
    """An earlier run's report folder, read: its ``summary.json`` and its ``results.jsonl`` records."""

    folder: Path
    summary: dict[str, Any]
    records: tuple[dict[str, Any], ...]
    outcomes: dict[str, bool]  # whether each ``set/id`` passed


def read_earlier_run(folder: Path) -> EarlierRun:
    """Read ``summary.json`` and ``results.jsonl`` of an earlier run's report folder.

    Raises:
        EarlierRunError: A file is missing or is not what ``python -m bot eval`` writes.
    """
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        records = tuple(read_results(folder / "results.jsonl"))
        outcomes = {record_name(r): bool(r["passed"]) for r in records}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EarlierRunError(f"{folder}: not a readable eval report folder ({error})") from error
    return EarlierRun(folder, summary, records, outcomes)


@dataclass(frozen=True)
class Delta:
    """One metric of one set in the old and the new run."""

    scope: str
    metric: str
    old: float | None
    new: float | None

    @property
    def change(self) -> float | None:
        """``new - old`` when both were measured."""
        return None if self.old is None or self.new is None else round(self.new - self.old, 4)


@dataclass(frozen=True)
class Comparison:
    """What changed since an earlier run: metric deltas, cases that flipped, and the answer-by-answer diff."""

    old_dir: Path
    deltas: tuple[Delta, ...]
    now_failing: tuple[str, ...]
    now_passing: tuple[str, ...]
    answers: AnswerDiff

    @property
    def changed(self) -> list[Delta]:
        """The deltas whose value moved."""
        return [d for d in self.deltas if d.old != d.new]

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data (for answers: the counts and the cases that changed)."""
        return {
            "old_dir": str(self.old_dir),
            "deltas": [{**asdict(d), "change": d.change} for d in self.deltas],
            "now_failing": list(self.now_failing),
            "now_passing": list(self.now_passing),
            "answers": self.answers.to_dict(),
        }


def compare_runs(
    earlier: EarlierRun, summaries: Mapping[str, GroupSummary], records: Sequence[Mapping[str, Any]]
) -> Comparison:
    """Per-metric deltas for every set in both runs, the cases that flipped, and every reply against the earlier.

    Args:
        earlier: The earlier run, read.
        summaries: This run's summaries per set (and ``all``).
        records: This run's ``results.jsonl`` records (``CaseResult.to_record()``), in run order.
    """
    old_sets = earlier.summary.get("sets", {})
    deltas = [
        Delta(scope, metric, old_sets[scope]["metrics"].get(metric), summary.metrics.get(metric))
        for scope, summary in summaries.items()
        if scope in old_sets
        for metric in RATE_METRICS
    ]
    old_outcomes = earlier.outcomes
    outcomes = {record_name(r): bool(r["passed"]) for r in records}
    both = [name for name in outcomes if name in old_outcomes]
    return Comparison(
        old_dir=earlier.folder,
        deltas=tuple(deltas),
        now_failing=tuple(n for n in both if old_outcomes[n] and not outcomes[n]),
        now_passing=tuple(n for n in both if not old_outcomes[n] and outcomes[n]),
        answers=diff_answers(earlier.records, records),
    )


def _format(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def comparison_lines(comparison: Comparison) -> list[str]:
    """The comparison in plain lines: changed metrics, the cases that flipped, the count of changed answers."""
    lines = [f"Compared with {comparison.old_dir}:"]
    if comparison.changed:
        for d in comparison.changed:
            change = "" if d.change is None else f" ({d.change:+.3f})"
            lines.append(f"  {d.scope} {d.metric}: {_format(d.old)} -> {_format(d.new)}{change}")
        lines.append(f"  ({len(comparison.deltas) - len(comparison.changed)} other metrics unchanged)")
    else:
        lines.append("  no metric changed")
    lines.append(
        f"  passed before, fail now ({len(comparison.now_failing)}): " + (", ".join(comparison.now_failing) or "none")
    )
    lines.append(
        f"  failed before, pass now ({len(comparison.now_passing)}): " + (", ".join(comparison.now_passing) or "none")
    )
    lines.append(f"  {comparison.answers.count_line()}")
    return lines
