"""Where a run's answers came from, as the reports' headers say it: this process's engine, or a server.

A run against a server (``--url``) records in ``info["server"]`` its address, the route asked, its
``/api/health`` (version, index version, passages, composer, store, worker, page), how often the suite waited
on a 429/503 and for how long, and a warning when the server's version isn't this checkout's. Beside it,
latency both ways: what the harness measured per scored question (through the network and any queue) and
what the reply's own ``timings_ms`` says the engine took (``total``; chat completions report none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.evaluate.runner import ALL, EvaluationRun

#: Health fields in the order the header lists them.
HEALTH_FIELDS = ("status", "version", "index_version", "passages", "composer", "store", "worker", "page")


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def source_lines(info: Mapping[str, Any]) -> list[str]:
    """What answered: the in-process engine's settings, or the server, its health, waits and version."""
    server = info.get("server")
    if not server:
        return [f"In process: model {info.get('embedding_model', '?')}, top_k {info.get('top_k', '?')}, "
                f"composer {info.get('composer', '?')}."]  # fmt: skip
    health = server.get("health") or {}
    lines = [f"Server {server.get('url')} via {server.get('route')}, {server.get('concurrency', 1)} at a time."]
    shown = [f"{name} {health[name]}" for name in HEALTH_FIELDS if health.get(name) is not None]
    lines.append("Its /api/health: " + ", ".join(shown) + ".")
    waits = server.get("waits") or {}
    if waits.get("count"):
        replies = ", ".join(f"{reply} ×{count}" for reply, count in (waits.get("by_reply") or {}).items())
        lines.append(f"Waited on Retry-After {waits['count']} times, {waits.get('seconds', 0):.0f} s in all "
                     f"({replies}).")  # fmt: skip
    else:
        lines.append("No 429 or 503 to wait on.")
    if server.get("version_warning"):
        lines.append(f"Warning: {server['version_warning']}")
    return lines


def latency_line(run: EvaluationRun) -> str:
    """The run's latency as the harness measured it, next to the engine's own ``timings_ms`` total."""
    latency = run.set_summaries()[ALL].latency_ms
    remote = bool(run.info.get("server"))
    line = (f"Latency of the scored question, measured by {'this client' if remote else 'the harness'}: "
            f"p50 {_ms(latency.get('p50'))}, p95 {_ms(latency.get('p95'))}")  # fmt: skip
    if latency.get("first_text_p50") is not None:
        line += f" (first text p50 {_ms(latency.get('first_text_p50'))})"
    if latency.get("server_p50") is None:
        return line + "; the replies carry no timings_ms (chat completions don't)."
    who = "the server's engine" if remote else "the engine"
    return line + (f"; {who} by its own timings_ms: p50 {_ms(latency.get('server_p50'))}, "
                   f"p95 {_ms(latency.get('server_p95'))}.")  # fmt: skip


def header_lines(run: EvaluationRun) -> list[str]:
    """Every line the reports' headers show about where the answers came from and how fast."""
    return [*source_lines(run.info), latency_line(run)] if run.results else source_lines(run.info)


def junit_properties(info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The server's address, route and health as JUnit properties (none for an in-process run)."""
    server = info.get("server")
    if not server:
        return []
    health = server.get("health") or {}
    found = [("server.url", server.get("url")), ("server.route", server.get("route"))]
    found += [(f"server.{name}", health.get(name)) for name in HEALTH_FIELDS]
    return [(name, str(value)) for name, value in found if value is not None]
