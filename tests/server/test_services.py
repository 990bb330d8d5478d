"""What the shell serves with: readiness, and an engine loaded late once its store answers again."""

from __future__ import annotations

import pytest

from bot.server.errors import NotReady
from tests.fakes import FakeEngine
from tests.server.conftest import Served


def test_an_engine_missing_at_start_up_is_loaded_by_the_retry_loop_and_health_turns_ready(served: Served) -> None:
    services, late = served.services, FakeEngine()
    services.engine = None  # as when the Chroma server was unreachable at start-up
    assert served.client.get("/api/health").json()["status"] == "starting"

    served.call(services.load_when_store_returns, lambda: late)  # returns once the engine is loaded (~1 s)
    health = served.client.get("/api/health")
    assert services.engine is late and health.status_code == 200 and health.json()["status"] == "ready"
    assert served.client.post("/api/chat", json={"message": "Where should my feet go?"}).status_code == 200
    assert late.questions() == ["Where should my feet go?"]


def test_the_services_are_loaded_only_with_engine_store_and_slots(served: Served) -> None:
    loaded = served.services.loaded()
    assert (loaded.engine, loaded.store, loaded.slots.total_tokens) == (served.engine, served.services.store, 1)
    store, served.services.store = served.services.store, None
    with pytest.raises(NotReady):
        served.services.loaded()
    served.services.store = store  # for the app's shutdown to close
