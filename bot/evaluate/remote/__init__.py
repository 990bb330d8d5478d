"""The QA suite against a running coach (``python -m bot eval --url``): the same ``Answer`` over its public API.

``connection`` talks HTTP to the deployment (headers, ``--cacert``, the proxy variables, waiting out 429/503
within ``--max-wait``, every failure as one plain sentence); ``health`` reads ``/api/health`` to check it is
the coach and what it serves; ``askers`` turns each route's reply (the stream, ``/api/chat`` or chat
completions) back into the ``Answer`` the runner scores, so metrics, reports and the gate are the in-process
ones. Nothing here imports the engine: the QA machine needs the sets and the corpus, not the model.
"""

from __future__ import annotations

from bot.evaluate.remote.askers import RemoteAsker, Route, remote_asker
from bot.evaluate.remote.connection import (
    Connection,
    LimitNeverClears,
    NotTheCoach,
    Refused,
    ServerOptions,
    TlsFailure,
    Unreachable,
    parse_header,
)
from bot.evaluate.remote.health import ServerHealth, check_server, version_warning

__all__ = [
    "Connection",
    "LimitNeverClears",
    "NotTheCoach",
    "Refused",
    "RemoteAsker",
    "Route",
    "ServerHealth",
    "ServerOptions",
    "TlsFailure",
    "Unreachable",
    "check_server",
    "parse_header",
    "remote_asker",
    "version_warning",
]
