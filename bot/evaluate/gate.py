"""The regression gate: minimums per set and metric from ``eval/thresholds.yaml``, checked against a run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.evaluate.loader import EVAL_DIR
from bot.evaluate.metrics import LOWER_IS_BETTER, RATE_METRICS, GroupSummary

THRESHOLDS_FILE = EVAL_DIR / "thresholds.yaml"


class ThresholdsError(ValueError):
    """The thresholds file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Threshold:
    """The lowest acceptable value of one metric on one set (or ``all``)."""

    scope: str
    metric: str
    minimum: float


@dataclass(frozen=True)
class Check:
    """One threshold against the measured value; ``passed`` is ``None`` when the run measured no case for it."""

    scope: str
    metric: str
    minimum: float
    value: float | None

    @property
    def passed(self) -> bool | None:
        """Whether the value reaches the minimum (``None``: not measured in this run)."""
        return None if self.value is None else self.value >= self.minimum

    def describe(self) -> str:
        """One line for the console: ``core hit@3 0.938 < 0.95``."""
        if self.value is None:
            return f"{self.scope} {self.metric}: not measured (no case in this run), minimum {self.minimum:g}"
        sign = ">=" if self.passed else "<"
        return f"{self.scope} {self.metric} {self.value:.3f} {sign} {self.minimum:g}"


@dataclass(frozen=True)
class GateResult:
    """Every check of a run; the gate passes when no measured check misses its minimum."""

    checks: tuple[Check, ...]

    @property
    def misses(self) -> list[Check]:
        """The checks below their minimum."""
        return [c for c in self.checks if c.passed is False]

    @property
    def unmeasured(self) -> list[Check]:
        """The checks this run had no case for (e.g. with ``--tags`` or a subset of sets)."""
        return [c for c in self.checks if c.passed is None]

    @property
    def passed(self) -> bool:
        """Whether every measured minimum is met."""
        return not self.misses

    def to_dict(self) -> dict[str, Any]:
        """The gate as JSON-ready data."""
        return {
            "passed": self.passed,
            "checks": [{**asdict(c), "passed": c.passed} for c in self.checks],
        }


def load_thresholds(path: Path = THRESHOLDS_FILE) -> list[Threshold]:
    """Read ``every_set`` (minimums for each set and ``all``) and ``sets`` (per set, overriding ``every_set``).

    The result lists ``every_set`` entries with scope ``*``; ``check_gate`` expands them.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ThresholdsError(f"{path}: no such thresholds file") from None
    except yaml.YAMLError as error:
        raise ThresholdsError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict) or set(data) - {"every_set", "sets"}:
        raise ThresholdsError(f"{path}: expected the keys 'every_set' and 'sets' only")
    groups: list[tuple[str, Any]] = [("*", data.get("every_set") or {})]
    sets = data.get("sets") or {}
    if not isinstance(sets, dict):
        raise ThresholdsError(f"{path}: 'sets' must map set names to their minimums")
    groups += list(sets.items())
    thresholds = []
    for scope, minimums in groups:
        label = "every_set" if scope == "*" else f"sets.{scope}"
        if not isinstance(minimums, dict):
            raise ThresholdsError(f"{path}: {label} must map metric names to minimums")
        for metric, minimum in minimums.items():
            if metric not in RATE_METRICS:
                raise ThresholdsError(f"{path}: {label}.{metric}: unknown metric (known: {', '.join(RATE_METRICS)})")
            if metric in LOWER_IS_BETTER:
                raise ThresholdsError(
                    f"{path}: {label}.{metric}: lower is better, so it takes no minimum (use no_{metric})"
                )
            if isinstance(minimum, bool) or not isinstance(minimum, int | float) or not 0 <= minimum <= 1:
                raise ThresholdsError(f"{path}: {label}.{metric}: the minimum must be a number from 0 to 1")
            thresholds.append(Threshold(str(scope), metric, float(minimum)))
    return thresholds


def check_gate(summaries: Mapping[str, GroupSummary], thresholds: list[Threshold]) -> GateResult:
    """Compare each set's metrics (and ``all``'s) with its minimums.

    A minimum named for a set applies even when the run measured nothing for it (shown as not measured); an
    ``every_set`` minimum applies only where the set has cases for the metric. Sets absent from the run
    (``--set``) are not checked.
    """
    named = {(t.scope, t.metric): t.minimum for t in thresholds if t.scope != "*"}
    every_set = {t.metric: t.minimum for t in thresholds if t.scope == "*"}
    checks = []
    for scope, summary in summaries.items():
        for metric in RATE_METRICS:
            value = summary.metrics.get(metric)
            if (scope, metric) in named:
                checks.append(Check(scope, metric, named[(scope, metric)], value))
            elif metric in every_set and value is not None:
                checks.append(Check(scope, metric, every_set[metric], value))
    return GateResult(tuple(checks))
