"""One remote run (``--url``): check the server, then the in-process suite's run, gate and reports over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.evaluate.remote.askers import Route, remote_asker
from bot.evaluate.remote.connection import Connection, ServerOptions
from bot.evaluate.remote.health import check_server, version_warning
from bot.evaluate.suite import ComposerRun, SuitePlan, SuiteResult, run_suite


def run_remote(
    plan: SuitePlan,
    options: ServerOptions,
    route: Route,
    *,
    concurrency: int,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
    on_run: Callable[[ComposerRun], None] | None = None,
    connection: Connection | None = None,
) -> SuiteResult:
    """Run ``plan``'s cases against the coach at ``options.url`` through ``route``; reports and gate as in process.

    The server's health is checked first (it must be the coach, and ready within ``--max-wait``); a version
    other than this checkout's is told to ``warn`` and recorded in the report. The run uses the server's
    composer, whatever ``plan`` names.

    Args:
        plan: What ``plan_suite`` checked.
        options: The server's address and how to reach it.
        route: The public API to ask through.
        concurrency: Cases asked at the same time.
        progress: Show a progress bar on standard error.
        warn: Told about a version mismatch.
        on_run: Given the run once its reports are written.
        connection: An open connection to use (tests); one is opened (and closed) otherwise.

    Raises:
        RunStopped: The server can't be evaluated (unreachable, TLS, not the coach, refuses, a limit that
            never clears); nothing is written.
    """
    owned = connection is None
    connection = connection or Connection(options)
    try:
        health = check_server(connection)
        warning = version_warning(health)
        if warning is not None and warn is not None:
            warn(warning)
        asker = remote_asker(connection, health, route)
        return run_suite(asker, replace(plan, composers=(asker.composer,)), progress=progress, warn=warn,
                         on_run=on_run, concurrency=concurrency, server=asker.describe)  # fmt: skip
    finally:
        if owned:
            connection.close()
