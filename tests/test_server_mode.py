"""The store as a real Chroma server shared by several processes (``BOT_CHROMA_URL``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.servers import chroma_server
from bot.engine.engine import Engine
from bot.index import build_index, open_index, read_manifest
from bot.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path):
    with chroma_server(tmp_path / "chroma-data") as url:
        yield url


def test_the_index_is_built_and_answered_through_a_chroma_server(server: str, corpus_copy: Path, tmp_path, embeddings):
    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", chroma_url=server)
    engine = Engine(settings, open_index(settings, embeddings), embeddings)
    answer = engine.ask("Where should my feet go?")
    assert answer.status.value == "answered" and "shoulder-width" in answer.answer
    assert not (tmp_path / "index" / "chroma").exists()  # nothing embedded on local disk


def test_a_reindex_by_one_process_is_served_by_another_running_process(
    server: str, corpus_copy: Path, tmp_path, embeddings
):
    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", chroma_url=server)
    build_index(settings, embeddings)
    env = {
        **os.environ,
        "BOT_CORPUS_DIR": str(corpus_copy),
        "BOT_INDEX_DIR": str(settings.index_dir),
        "BOT_CHROMA_URL": server,
    }
    app = subprocess.Popen(
        [sys.executable, "-m", "bot", "ask", "--json", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
    )

    def ask(question: str) -> dict:
        assert app.stdin is not None and app.stdout is not None
        app.stdin.write(json.dumps({"question": question}) + "\n")
        app.stdin.flush()
        return json.loads(app.stdout.readline())

    try:
        before = ask("Do knee sleeves help?")
        assert "velcro" not in before["answer"].lower()
        article = corpus_copy / "leg-press-knee-pain.md"
        article.write_text(
            article.read_text().replace(
                "Using knee sleeves can help stabilize", "Using velcro knee sleeves can help stabilize"
            )
        )
        subprocess.run(
            [sys.executable, "-m", "bot", "index"],
            env=env,
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
        assert read_manifest(settings.index_dir).version == 2
        import time

        time.sleep(1.1)  # the running process checks for a newer version at most once a second
        after = ask("Do knee sleeves help?")
        assert "velcro knee sleeves" in after["answer"].lower()
    finally:
        app.stdin.close()
        app.wait(timeout=30)
        app.stdout.close()
