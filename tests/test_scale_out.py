"""Several app workers on one Chroma server, re-indexed while they answer, and a build killed half-way.

Real processes on loopback: ``chroma run``, ``python app.py`` with ``BOT_WORKERS``, ``python -m bot index``;
the load is a few closed-loop clients, bounded in requests and time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import ChromaServer
from bot.index import IndexFiles, View, build_index, read_manifest
from bot.index.store import connect
from bot.policy import DISCLAIMER
from bot.settings import PROJECT_ROOT, Settings
from tests.processes import AppProcess, Hammer, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTIONS = [
    "Do knee sleeves help?",
    "Where should my feet go on the leg press?",
    "Is it bad to lock my knees at the top?",
    "Why do my knees hurt after leg day?",
    "How often should I do leg press?",
]


@pytest.fixture
def chroma(tmp_path: Path):
    server = ChromaServer(tmp_path / "chroma").start()
    yield server
    server.stop()


def edit(corpus: Path, old: str, new: str) -> None:
    article = corpus / "leg-press-knee-pain.md"
    text = article.read_text(encoding="utf-8")
    assert old in text
    article.write_text(text.replace(old, new), encoding="utf-8")


def healths(app: AppProcess, tries: int = 40) -> dict[int, dict]:
    """The latest health report of each worker that answered ``tries`` health checks."""
    found = {}
    for _ in range(tries):
        with httpx.Client(timeout=5) as client:  # a new connection each time, so any worker may take it
            body = client.get(f"{app.url}/api/health").json()
        found[body["worker"]] = body
    return found


def test_several_workers_need_a_chroma_server() -> None:
    env = {**os.environ, "BOT_WORKERS": "2"}
    env.pop("BOT_CHROMA_URL", None)
    result = subprocess.run([sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 2
    assert "BOT_WORKERS=2 needs a Chroma server" in result.stderr and "BOT_CHROMA_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_workers_answer_through_a_reindex_with_no_errors_and_switch_to_the_new_content(
    chroma: ChromaServer, corpus_copy: Path, tmp_path: Path, embeddings
) -> None:
    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", chroma_url=chroma.url)
    build_index(settings, embeddings)
    app = AppProcess(tmp_path, workers=2, corpus_dir=corpus_copy, index_dir=settings.index_dir, chroma_url=chroma.url)
    with app:
        app.wait_ready(180)
        wait_for(lambda: len(healths(app, 10)) == 2, 60)  # both workers up
        for report in healths(app).values():
            assert report["status"] == "ready" and report["index_version"] == 1
            assert report["store"] == f"chroma server {chroma.url}" and report["composer"] == "extractive"

        edit(corpus_copy, "Using knee sleeves can help stabilize", "Using velcro knee sleeves can help stabilize")
        env = {**app.env, "BOT_WORKERS": "1"}
        with Hammer(app.url, QUESTIONS, clients=3, limit=30_000) as hammer:
            time.sleep(1.0)
            build_started = time.monotonic()
            build = subprocess.run([sys.executable, "-m", "bot", "index"], cwd=PROJECT_ROOT, env=env,
                                   capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
            build_done = time.monotonic()
            assert build.returncode == 0, build.stderr
            assert "Index v2" in build.stdout
            # Both workers notice the new version within a second or so of their next question.
            wait_for(lambda: {r["index_version"] for r in healths(app, 10).values()} == {2}, 30)
            switched = time.monotonic()
            wait_for(lambda: sum(r.sent > switched for r in hammer.replies) >= 20, 60)
        assert switched - build_done < 10
        sleeves = [r for r in hammer.replies if r.question == "Do knee sleeves help?"]
        assert hammer.errors() == {}, hammer.errors()
        assert len(hammer.replies) > 40
        assert not any("velcro" in r.answer for r in sleeves if r.received < build_started)
        late = [r for r in sleeves if r.sent > switched]
        assert late and all("velcro knee sleeves" in r.answer.lower() for r in late)
        for report in healths(app).values():
            assert report["index_version"] == 2 and report["version"].endswith("+index.2")

        # One scrape reports every worker: counts summed, per-worker gauges by pid.
        families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{app.url}/api/metrics").text)}
        ok = {"route": "/api/chat", "code": "200"}
        chats = sum(s.value for s in families["bot_http_requests"].samples if s.labels == ok)
        assert chats >= len(hammer.replies)
        versions = {s.labels["pid"]: s.value for s in families["bot_index_version"].samples}
        assert set(versions.values()) == {2.0} and len(versions) == 2
        assert app.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert "Traceback" not in app.stderr()


def test_a_build_killed_half_way_leaves_the_live_index_serving_and_the_next_one_resumes(
    chroma: ChromaServer, corpus_copy: Path, tmp_path: Path, embeddings
) -> None:
    from bench.synthetic_corpus import write_corpus
    from bot.content.chunking import chunk_document
    from bot.content.corpus import load_document
    from bot.index import quotable_sentences

    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", chroma_url=chroma.url)
    build_index(settings, embeddings)
    app = AppProcess(tmp_path, corpus_dir=corpus_copy, index_dir=settings.index_dir, chroma_url=chroma.url)
    with app:
        app.wait_ready(180)
        # Enough new articles that embedding them takes a while.
        added = write_corpus(corpus_copy / "more", 4)
        new_texts = sum(
            1 + len(list(quotable_sentences(c)))
            for path in added
            for c in chunk_document(load_document(path, corpus_copy), settings.chunk_max_chars)
        )
        files = IndexFiles(settings.index_dir)
        store = connect(settings).stores(settings)[View.text]
        live = read_manifest(settings.index_dir).chunk_count

        def passages_in_store() -> int:
            return int(store.count())

        with Hammer(app.url, QUESTIONS, clients=2, limit=30_000) as hammer:
            build = subprocess.Popen([sys.executable, "-m", "bot", "index"], cwd=PROJECT_ROOT, env=app.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

            def still_building() -> None:
                assert build.poll() is None, build.communicate()[1]

            wait_for(lambda: passages_in_store() > live, 120, still_building)  # a first batch is written
            build.send_signal(signal.SIGKILL)
            build.communicate(timeout=30)
            assert build.returncode == -signal.SIGKILL and files.pending.exists()

            # The live index still serves, unchanged.
            assert read_manifest(settings.index_dir).version == 1
            time.sleep(1.5)
            health = app.health()
            assert health is not None and health.status_code == 200 and health.json()["index_version"] == 1
            served = len(hammer.replies)

            # The next build picks up what the killed one embedded.
            resumed = subprocess.run([sys.executable, "-m", "bot", "index"], cwd=PROJECT_ROOT, env=app.env,
                                     capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
            assert resumed.returncode == 0, resumed.stderr
            embedded = int(re.search(r"(\d+) texts embedded", resumed.stdout).group(1))
            assert 0 < embedded < new_texts, (embedded, new_texts)
            assert not files.pending.exists() and read_manifest(settings.index_dir).version == 2
            wait_for(lambda: (h := app.health()) is not None and h.json()["index_version"] == 2, 30)
            passages = app.health().json()["passages"]
        assert hammer.errors() == {}, hammer.errors()
        assert len(hammer.replies) > served > 0
        assert passages == read_manifest(settings.index_dir).chunk_count > 36
        answer = httpx.post(f"{app.url}/api/chat", json={"message": "Where should my feet go?"}, timeout=30).json()
        assert answer["status"] == "answered" and answer["answer"].endswith(DISCLAIMER)
    assert "Traceback" not in app.stderr()
