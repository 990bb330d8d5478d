"""Real Redis and PostgreSQL servers for the integration tests, on free loopback ports with throw-away data dirs.

The servers themselves are ``bench/servers.py``'s (the shared-server soak starts them too); here a missing one
fails the test with the command to install it (``apt-get install -y redis-server postgresql``; ``make servers``
and ``.ci/run`` install them as root) — never a silent skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pytest

from bench import servers

INSTALL = servers.INSTALL
REDIS_SERVER = servers.REDIS_SERVER
POSTGRES_ROOT = servers.POSTGRES_ROOT


def _missing(what: str) -> NoReturn:
    pytest.fail(str(servers.MissingServer(what)), pytrace=False)


class RedisServer(servers.RedisServer):
    """``redis-server`` on a free loopback port, no persistence; can be stopped and started again on that port."""

    def __init__(self, folder: Path) -> None:
        try:
            super().__init__(folder, binary=REDIS_SERVER)  # read when called, so a test can point it elsewhere
        except servers.MissingServer:
            _missing("redis-server")


class PostgresServer(servers.PostgresServer):
    """A PostgreSQL cluster of its own (``initdb``) on a free loopback port; as root, run as ``postgres``."""

    def __init__(self) -> None:
        try:
            bin_dir = servers.postgres_bin(POSTGRES_ROOT)
        except servers.MissingServer:
            _missing("PostgreSQL")
        super().__init__(bin_dir)
