"""Fixtures for the server's fast tests: the app over ``FakeEngine``, started in-process (no model, no Chroma)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.server.app import create_app
from bot.server.services import Services
from bot.settings import Settings
from tests.conftest import TEST_HOSTS, free_port
from tests.fakes import FakeEngine

GYM = "https://gym.example"


@dataclass
class Served:
    """The started app: a client, its services and the fake engine behind them."""

    client: TestClient
    services: Services
    engine: FakeEngine

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function`` (async or not) in the app's event loop, where its answer slots live."""
        return self.client.portal.call(function, *args)  # type: ignore[union-attr]


def closed_port_url() -> str:
    """The address of a Chroma server that isn't there (connections are refused at once)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def fake_settings(tmp_path: Path) -> Settings:
    """One answer slot, lenient limits, one allowed site; nothing read from the developer's environment."""
    return Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data", cors_origins=[GYM],
                    rate_limit="1000/minute", worker_threads=1, allowed_hosts=TEST_HOSTS)  # fmt: skip


@pytest.fixture
def serve(fake_settings: Settings) -> Callable[..., Any]:
    """``with serve(**settings) as served:`` the app (without its page) over a fresh ``FakeEngine``."""

    @contextmanager
    def started(**changes: Any) -> Iterator[Served]:
        engine = FakeEngine()
        app = create_app(fake_settings.model_copy(update=changes), engine=engine, page=False)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Served(client, app.state.services, engine)

    return started


@pytest.fixture
def served(serve: Callable[..., Any]) -> Iterator[Served]:
    with serve() as started:
        yield started
