"""Shared fixtures: the real embedding model and a real Chroma index, loaded once per session."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT, Settings, get_settings

CORPUS = PROJECT_ROOT / "corpus"


@pytest.fixture(autouse=True)
def _clean_bot_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's BOT_* variables or a cached Settings."""
    for name in list(os.environ):
        if name.startswith("BOT_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def embeddings():
    from bot.models.embedding import load_embeddings

    return load_embeddings(threads=1)


#: The host name Starlette's TestClient sends (``http://testserver``), which the apps under test answer to.
TEST_HOSTS = ["testserver"]


@pytest.fixture(scope="session")
def index_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(corpus_dir=CORPUS, index_dir=tmp_path_factory.mktemp("index"), allowed_hosts=TEST_HOSTS)


@pytest.fixture(scope="session")
def engine(index_settings: Settings, embeddings):
    from bot.engine.engine import Engine
    from bot.index import open_index

    return Engine(index_settings, open_index(index_settings, embeddings), embeddings)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A private copy of the corpus that a test may edit."""
    target = tmp_path / "corpus"
    target.mkdir()
    for path in CORPUS.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


@pytest.fixture
def json_logs():
    """Our JSON-lines handler on the root logger for one test (then removed); returns the lines so far."""
    from bot.observability import _BotHandler, configure_logging

    root, written = logging.getLogger(), io.StringIO()
    level = root.level
    configure_logging("INFO", as_json=True, stream=written)
    yield lambda: [json.loads(line) for line in written.getvalue().splitlines()]
    for handler in [h for h in root.handlers if isinstance(h, _BotHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)


# -- the real web server on loopback, for browser and client tests -------------------------------------

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """uvicorn serving an ASGI app from a background thread, on a free loopback port, configured as ``app.py`` does."""

    def __init__(self, app, port: int, settings: Settings | None = None, **options) -> None:
        """``settings``: the server's (its timeouts and connection limit); ``options``: more of ``uvicorn.Config``'s."""
        import threading

        import uvicorn

        from bot.server.protocol import server_config

        self.url = f"http://127.0.0.1:{port}"
        config = server_config(app, settings or Settings(), host="127.0.0.1", port=port, log_level="warning",
                               **options)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def wait_for_page(self) -> None:
        """Until ``/api/health`` says the chat page is built (it is, a moment after the API is ready)."""
        import httpx

        from tests.processes import page_when_built

        page = page_when_built(lambda: httpx.get(f"{self.url}/api/health", timeout=5).json())
        assert page == "ready", f"the chat page is {page}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class GymSite:
    """A static "gym website" on its own loopback origin that embeds the bot, with hostile CSS of its own."""

    def __init__(self, bot_url: str, port: int) -> None:
        import http.server
        import threading

        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Iron Temple Gym</title>
<style>* {{ color: #c00 !important; font-family: serif !important; }} button {{ display: none; }}</style></head>
<body><h1>Iron Temple Gym</h1><p>Opening hours: 6–22 every day.</p>
<script src="{bot_url}/widget.js" data-title="Ask our coach" defer></script></body></html>"""
        framed = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Coach</title></head>
<body><h1>Our coach</h1><iframe id="coach" title="Knee-pain coach" src="{bot_url}/?embed=1"
style="width: 100%; height: 760px; border: 0"></iframe></body></html>"""
        pages = {"/": page, "/framed.html": framed}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0], "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.url = f"http://127.0.0.1:{port}"
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def site_ports() -> dict[str, int]:
    return {"bot": free_port(), "gym": free_port(), "stranger": free_port()}


@pytest.fixture(scope="session")
def live_settings(index_settings: Settings, tmp_path_factory: pytest.TempPathFactory, site_ports) -> Settings:
    return index_settings.model_copy(update={
        "data_dir": tmp_path_factory.mktemp("data"),
        "cors_origins": [f"http://127.0.0.1:{site_ports['gym']}"],
        "rate_limit": "10000/minute",
    })  # fmt: skip


@pytest.fixture(scope="session")
def live_server(live_settings: Settings, engine, site_ports):
    """The real app (API, chat page, widget) served by uvicorn on a loopback port."""
    from bot.server.app import create_app

    with ThreadedServer(create_app(live_settings, engine=engine), site_ports["bot"], live_settings) as server:
        server.wait_for_page()
        yield server


@pytest.fixture(scope="session")
def gym_sites(live_server, site_ports):
    """Two gym sites embedding the bot: one on the allow-list, one not."""
    allowed, stranger = GymSite(live_server.url, site_ports["gym"]), GymSite(live_server.url, site_ports["stranger"])
    yield {"allowed": allowed, "stranger": stranger}
    allowed.close()
    stranger.close()


#: How to get Debian's Chromium (what `make test` and `.ci/run` do as root).
CHROMIUM_INSTALL = "apt-get install -y chromium chromium-driver"


def chromium_or_fail(path: Path = CHROMIUM, *, may_install: bool = True) -> Path:
    """Debian's Chromium at ``path``; installed first if missing and this is root, else the tests fail saying how.

    Never a skip: `make test` promises the browser tests, so a machine without the browser fails them.
    """
    import shutil
    import subprocess

    if not path.exists() and may_install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], env=env, check=False)
    if not path.exists():
        pytest.fail(f"The browser tests need Debian's Chromium at {path}, which is missing. Install it with "
                    f"`sudo {CHROMIUM_INSTALL}` (as root: `{CHROMIUM_INSTALL}`), then run the tests again; "
                    "`make test-fast` runs the tests that need no browser.", pytrace=False)  # fmt: skip
    return path


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    executable = chromium_or_fail()
    from playwright.sync_api import sync_playwright  # a test dependency: its absence is a broken install

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(executable),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def redis_server(tmp_path: Path):
    """A real ``redis-server`` on a free loopback port (fails, saying how to install it, when missing)."""
    from tests.servers import RedisServer

    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL cluster on a free loopback port, for the session (as root: run as ``postgres``)."""
    from tests.servers import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def database_url(postgres_server) -> str:
    """``postgres_server``'s URL, with the feedback table emptied first."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_server.url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP TABLE IF EXISTS feedback"))
    engine.dispose()
    return postgres_server.url
