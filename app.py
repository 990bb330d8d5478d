"""Start the web server: the chat page at ``/``, the JSON API under ``/api``, the widget at ``/widget.js``.

``python app.py`` (or ``make run``) serves on ``BOT_HOST:BOT_PORT`` (default 127.0.0.1:7860) and prints
the address once ``/api/health`` says ready. ``BOT_WORKERS=N`` (``make serve WORKERS=N``) runs N worker
processes on the same port (uvicorn's process manager); they must share a Chroma server
(``BOT_CHROMA_URL``), because the embedded store serves one process. SIGTERM or Ctrl-C stops accepting
connections and lets requests in flight finish (up to ``BOT_SHUTDOWN_TIMEOUT`` seconds).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from bot.cli.common import configure_logging
from bot.settings import Settings, get_settings, setting_errors


def _local_url(settings: Settings) -> str:
    """The address to show and to poll: a wildcard listen address is reached on loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def _announce_when_ready(settings: Settings) -> threading.Event:
    """Print the address once a worker answers and serves its chat page (from a daemon thread); returns "seen"."""
    seen = threading.Event()

    def watch() -> None:
        import httpx

        url = _local_url(settings)
        # Plain HTTP to this machine: no TLS context (loading the CA bundle took 0.1 s of start-up's CPU).
        with httpx.Client(timeout=2, verify=False) as client:
            while True:
                try:
                    health = client.get(f"{url}/api/health")
                    if health.status_code == 200 and health.json().get("page") != "starting":
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.1)
        seen.set()
        workers = f", {settings.workers} workers" if settings.workers > 1 else ""
        print(f"Knee-pain coach ready at {url}/  (API docs: /docs{workers}; Ctrl-C stops it)",
              file=sys.stderr, flush=True)  # fmt: skip

    threading.Thread(target=watch, name="announce-ready", daemon=True).start()
    return seen


def _metrics_dir() -> tuple[Path, bool]:
    """A fresh folder for the workers' Prometheus metrics (prometheus-client's multiprocess mode).

    Returns the folder and whether it was created here (and so is deleted on exit).
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:  # the operator's folder: last run's files must not be added to this run's
        folder = Path(configured)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return folder, False
    folder = Path(tempfile.mkdtemp(prefix="bot-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)  # inherited by the workers
    return folder, True


def _settings_or_exit() -> Settings:
    """The settings, or one line per wrong setting (which, what was given, what is accepted) and exit 2."""
    try:
        return get_settings()
    except ValidationError as error:
        for line in setting_errors(error):
            print(line, file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    """Serve until Ctrl-C or SIGTERM."""
    settings = _settings_or_exit()
    configure_logging()
    if settings.workers > 1 and not settings.chroma_url:
        print(
            f"BOT_WORKERS={settings.workers} needs a Chroma server: the embedded store serves one process. "
            "Start one (chroma run --path DIR --host 127.0.0.1 --port 8000) and set "
            "BOT_CHROMA_URL=http://127.0.0.1:8000 — see docs/operations.md, 'Scaling out'.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    workers = f" with {settings.workers} workers" if settings.workers > 1 else ""
    print(f"Loading the knee-pain coach on {settings.host}:{settings.port}{workers}…", file=sys.stderr, flush=True)
    ready = _announce_when_ready(settings)
    # The server's own guards (header/body deadlines, a connection limit), no proxy headers, no banner,
    # and the 65 s keep-alive: bot.server.protocol.server_config.
    from bot.server.protocol import server_config

    common: dict[str, object] = {
        "log_level": settings.log_level.lower(),
        "log_config": None,  # our handler (plain or JSON lines) formats uvicorn's records too
        "access_log": False,  # bot.access logs each request with its id and timings instead
    }
    if settings.workers == 1:
        # Imported here: with several workers this process only manages them, and each imports the app itself.
        from bot.server.app import create_app

        server = uvicorn.Server(server_config(create_app(settings), settings, **common))
        server.run()
        if not server.started:
            raise SystemExit(1)
        return
    metrics_dir, created = _metrics_dir()
    try:
        # What uvicorn.run does for several workers, with our configuration (the protocol and its limits).
        from uvicorn.supervisors import Multiprocess

        config = server_config("bot.server.app:worker_app", settings, factory=True, workers=settings.workers, **common)
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        if created:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if not ready.is_set():  # the workers failed to start (their errors are logged above)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
