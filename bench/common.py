"""Timing and reporting helpers shared by the benchmarks."""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

RESULTS = Path(__file__).resolve().parent / "results"
SETS = Path(__file__).resolve().parent.parent / "eval" / "sets"


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(milliseconds: list[float]) -> dict[str, float]:
    """Median, p95 and mean of a list of timings in milliseconds."""
    return {
        "n": len(milliseconds),
        "p50_ms": round(statistics.median(milliseconds), 3),
        "p95_ms": round(percentile(milliseconds, 95), 3),
        "mean_ms": round(statistics.fmean(milliseconds), 3),
    }


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``call`` and return its result with the elapsed milliseconds."""
    started = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - started) * 1000


def answerable_cases(*set_names: str) -> list[dict[str, Any]]:
    """Single-question cases expected to be answered, with gold spans, from the named eval sets."""
    cases: list[dict[str, Any]] = []
    for name in set_names:
        data = yaml.safe_load((SETS / f"{name}.yaml").read_text(encoding="utf-8"))
        cases += [c for c in data["cases"] if c["expect"] == "answer" and c.get("question") and c.get("gold_spans")]
    return cases


def hits(ranked_texts: Iterable[list[str]], cases: list[dict[str, Any]], at: int) -> float:
    """Share of cases whose top-``at`` texts contain one of their gold spans."""
    found = [
        any(g in t for t in texts[:at] for g in c["gold_spans"]) for texts, c in zip(ranked_texts, cases, strict=True)
    ]
    return round(sum(found) / len(found), 3)


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Save a benchmark run as JSON (with date, machine and peak memory) under bench/results/."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "benchmark": name,
        "date": stamp,
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "cpus": _cpus()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **result,
    }
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return path


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
