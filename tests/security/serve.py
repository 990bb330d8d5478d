"""The real server over ``FakeEngine``, as a process of its own: ``python -m tests.security.serve``.

uvicorn configured exactly as ``app.py`` configures it (``bot.server.protocol.server_config``), the whole ASGI
app with its chat page, the settings from ``BOT_*``; only the engine is the fake (it answers in microseconds
and the process starts in seconds), so the security tests stay bounded. ``make bench-mixed`` runs the same
classes of hostile input against ``app.py`` with the real engine.
"""

from __future__ import annotations

import uvicorn

from bot.observability import configure_logging
from bot.server.app import create_app
from bot.server.protocol import server_config
from bot.settings import get_settings
from tests.fakes import FakeEngine


def main() -> None:
    """Serve until SIGTERM."""
    settings = get_settings()
    configure_logging(settings.log_level, as_json=settings.log_json)
    app = create_app(settings, engine=FakeEngine())
    uvicorn.Server(server_config(app, settings, log_config=None, access_log=False, log_level="warning")).run()


if __name__ == "__main__":
    main()
