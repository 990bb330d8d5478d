"""Start the web server: the chat page at ``/``, the JSON API under ``/api``, the widget at ``/widget.js``.

``python app.py`` (or ``make run``) serves on ``BOT_HOST:BOT_PORT`` (default 127.0.0.1:7860) and prints
the address once the engine is loaded and ``/api/health`` says ready.
"""

from __future__ import annotations

import sys

import uvicorn

from bot.api import create_app
from bot.cli import configure_logging
from bot.settings import get_settings


class _Server(uvicorn.Server):
    """uvicorn, announcing the address once the app (engine included) has started."""

    async def startup(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
        await super().startup(sockets)
        if self.started:
            settings = get_settings()
            host = f"[{settings.host}]" if ":" in settings.host else settings.host
            print(f"Knee-pain coach ready at http://{host}:{settings.port}/  (API docs: /docs; Ctrl-C stops it)",
                  file=sys.stderr, flush=True)  # fmt: skip


def main() -> None:
    """Serve until Ctrl-C or SIGTERM."""
    configure_logging()
    settings = get_settings()
    print(f"Loading the knee-pain coach on {settings.host}:{settings.port}…", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    server.run()
    if not server.started:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
