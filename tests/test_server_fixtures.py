"""The real-server fixtures fail, saying how to install the server, when it is missing: never a silent skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import servers


def test_a_missing_redis_server_fails_with_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(servers, "REDIS_SERVER", str(tmp_path / "no-redis-server"))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y redis-server postgresql"):
        servers.RedisServer(tmp_path)


def test_a_missing_postgresql_fails_with_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(servers, "POSTGRES_ROOT", tmp_path)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y redis-server postgresql"):
        servers.PostgresServer()
