"""The API keeps its own OpenAPI schema: schemathesis, every check, against the real server on loopback.

Every status and content type a route answers must be documented, every error must be the project's
``{"error", "message"}`` shape, an undeclared method a 405, and nothing a 500. The budget is bounded (a fixed
seed and a few dozen examples per operation); run ``schemathesis run <url>/openapi.json --checks all`` with a
larger ``--max-examples`` to explore further.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.server.app import create_app
from bot.settings import Settings
from tests.conftest import ThreadedServer, free_port
from tests.fakes import FakeEngine

pytestmark = [pytest.mark.slow]


def test_the_api_conforms_to_its_own_schema_under_every_check(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data", rate_limit="off",
                        cors_origins=["https://gym.example"])  # fmt: skip
    schemathesis = Path(sys.executable).with_name("schemathesis")
    with ThreadedServer(create_app(settings, engine=FakeEngine(), page=False), free_port(), settings) as server:
        budget = ["--max-examples", "40", "--workers", "1", "--seed", "20261127", "--no-color"]
        config = ["--config-file", str(Path(__file__).with_name("schemathesis.toml"))]
        command = [str(schemathesis), *config, "run", f"{server.url}/openapi.json", "--checks", "all", *budget]
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout
