"""Prometheus metrics for ``GET /api/metrics``: requests by status, stage latencies, index version, caches.

With several worker processes each one records into files under ``PROMETHEUS_MULTIPROC_DIR`` (``app.py``
sets it before starting them, per prometheus-client's multiprocess mode) and a scrape of any worker
reports the sum over all of them; gauges that differ per worker (index version, readiness) are reported
per ``pid``. In one process the metrics live in memory and include the process's own CPU and memory.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable, Iterator, Mapping
from threading import Lock
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from bot.cache import CountingLRU
    from bot.contract import Answer

_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The routes reported by name; anything else is ``/api/other`` or ``/v1/other`` (unknown API paths) or ``page``.
ROUTES = frozenset({"/api/chat", "/api/chat/stream", "/api/feedback", "/api/health", "/api/metrics", "/widget.js",
                    "/v1/chat/completions", "/v1/models"})  # fmt: skip

REQUESTS = Counter("bot_http_requests", "HTTP requests answered, by route and status code.", ["route", "code"])
REQUEST_SECONDS = Histogram(
    "bot_http_request_duration_seconds", "Time to answer an HTTP request, by route.", ["route"],
    buckets=_STAGE_BUCKETS,
)  # fmt: skip
ANSWERS = Counter("bot_answers", "Answers given, by answer status (answered, escalated, …).", ["status"])
STAGE_SECONDS = Histogram(
    "bot_stage_duration_seconds", "Time spent in each stage of answering (Answer.timings_ms).", ["stage"],
    buckets=_STAGE_BUCKETS,
)  # fmt: skip
CACHE_LOOKUPS = Counter("bot_cache_lookups", "Cache lookups by cache and result (hit, miss).", ["cache", "result"])
FAILURES = Counter(
    "bot_failures", "Requests that failed, by cause (store_unavailable, feedback_write, limits_redis, …).", ["cause"]
)
INDEX_VERSION = Gauge("bot_index_version", "Index version the worker answers from.", multiprocess_mode="liveall")
READY = Gauge("bot_ready", "1 when the worker can answer (engine and store).", multiprocess_mode="liveall")
LIMITS_DEGRADED = Gauge(
    "bot_limits_degraded", "1 while the worker counts the limits in its own memory because Redis is unreachable.",
    multiprocess_mode="liveall",
)  # fmt: skip


def multiprocess_dir() -> str | None:
    """prometheus-client's own setting: where worker processes keep their metrics (unset: one process)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def route_label(path: str) -> str:
    """A bounded label for a request path (the page's many asset paths are all ``page``)."""
    if path in ROUTES:
        return path
    if path.startswith("/v1/"):
        return "/v1/other"
    return "/api/other" if path.startswith("/api/") else "page"


def observe_request(path: str, status: int, seconds: float) -> None:
    """Count one HTTP request and its duration."""
    route = route_label(path)
    REQUESTS.labels(route, str(status)).inc()
    REQUEST_SECONDS.labels(route).observe(seconds)


def observe_answer(answer: Answer) -> None:
    """Count one answer by status and record its stage timings."""
    ANSWERS.labels(answer.status.value).inc()
    for stage, milliseconds in answer.timings_ms.items():
        STAGE_SECONDS.labels(stage).observe(milliseconds / 1000)


class CacheCounters:
    """Turns the caches' own hit/miss counts into Prometheus counters.

    The engine's caches count for themselves (``CountingLRU``); the retrieval cache is replaced with each
    index version, so the last counts seen are kept per cache object and only the increase is added.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[weakref.ref[Any], int, int]] = {}
        self._lock = Lock()

    def sync(self, caches: Mapping[str, CountingLRU[Any]]) -> None:
        """Add what each cache counted since the last call."""
        for name, cache in caches.items():
            with self._lock:
                ref, hits, misses = self._seen.get(name, (None, 0, 0))
                if ref is None or ref() is not cache:
                    hits = misses = 0
                now_hits, now_misses = cache.hits, cache.misses
                self._seen[name] = (weakref.ref(cache), now_hits, now_misses)
            if now_hits > hits:
                CACHE_LOOKUPS.labels(name, "hit").inc(now_hits - hits)
            if now_misses > misses:
                CACHE_LOOKUPS.labels(name, "miss").inc(now_misses - misses)


CACHES = CacheCounters()


def set_index_version(version: int) -> None:
    """The index version this worker answers from."""
    INDEX_VERSION.set(version)


def set_ready(ready: bool) -> None:
    """Whether this worker can answer."""
    READY.set(1 if ready else 0)


def worker_stopped() -> None:
    """Drop this worker's per-process gauges (multiprocess mode), so a stopped worker is not reported."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())


class _Families:
    """Already collected metric families, for ``generate_latest``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _hit_ratios(families: list[Metric]) -> Metric:
    counts: dict[str, dict[str, float]] = {}
    for family in families:
        if family.name == "bot_cache_lookups":
            for sample in family.samples:
                if sample.name == "bot_cache_lookups_total":
                    by_result = counts.setdefault(sample.labels["cache"], {})
                    by_result[sample.labels["result"]] = by_result.get(sample.labels["result"], 0.0) + sample.value
    ratio = GaugeMetricFamily(
        "bot_cache_hit_ratio", "Share of cache lookups answered from the cache, since start.", labels=["cache"]
    )
    for cache, by_result in sorted(counts.items()):
        total = by_result.get("hit", 0.0) + by_result.get("miss", 0.0)
        ratio.add_metric([cache], by_result.get("hit", 0.0) / total if total else 0.0)
    return ratio


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, with their content type (all workers' in multiprocess mode)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        families = list(registry.collect())
    else:
        families = list(REGISTRY.collect())
    families.append(_hit_ratios(families))
    return generate_latest(_Families(families)), CONTENT_TYPE_LATEST
