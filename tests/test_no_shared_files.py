"""Workers and builds that share only the Chroma server: the live-version pointer is in the store, and each
worker makes the BM25 index it lacks from the passages there (issue 17, "no shared file system").

Real ``chroma run`` on loopback; each engine, app and ``bot index`` has a ``BOT_INDEX_DIR`` of its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.servers import ChromaServer
from bot.engine.engine import Engine
from bot.index import build_index, discard_index, open_index
from bot.index.pointer import FilePointer, StorePointer, live_pointer
from bot.index.store import connect
from bot.settings import PROJECT_ROOT, Settings
from tests.index.conftest import CountingEmbeddings
from tests.processes import AppProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: A re-index from a third machine is served by both instances within this many seconds of the build ending.
PICKUP_SECONDS = 10


@pytest.fixture
def chroma(tmp_path: Path):
    server = ChromaServer(tmp_path / "chroma").start()
    yield server
    server.stop()


def machine(corpus: Path, tmp_path: Path, name: str, url: str) -> Settings:
    """A machine of its own: a copy of the corpus and an empty index folder; only ``url`` in common."""
    own = tmp_path / name
    shutil.copytree(corpus, own / "corpus")
    return Settings(corpus_dir=own / "corpus", index_dir=own / "index", chroma_url=url)


def edit(corpus: Path) -> None:
    article = corpus / "leg-press-knee-pain.md"
    text = article.read_text(encoding="utf-8")
    old = "Using knee sleeves can help stabilize"
    assert old in text
    article.write_text(text.replace(old, "Using velcro knee sleeves can help stabilize"), encoding="utf-8")


def test_the_pointer_is_published_in_the_store_and_read_back(
    chroma: ChromaServer, corpus_copy: Path, tmp_path, embeddings
):
    builder = machine(corpus_copy, tmp_path, "builder", chroma.url)
    build_index(builder, embeddings)
    pointer = live_pointer(machine(corpus_copy, tmp_path, "reader", chroma.url))
    assert isinstance(pointer, StorePointer)
    manifest = pointer.read()
    assert manifest is not None and manifest.version == 1 and manifest.chunk_count > 30
    assert pointer.stamp() == (1, manifest.built_at)
    assert isinstance(live_pointer(Settings(index_dir=tmp_path / "plain")), FilePointer)  # no server: the file


def test_an_engine_with_an_empty_index_dir_serves_from_the_store_alone(
    chroma: ChromaServer, corpus_copy: Path, tmp_path, embeddings
):
    build_index(machine(corpus_copy, tmp_path, "builder", chroma.url), embeddings)
    worker = machine(corpus_copy, tmp_path, "worker", chroma.url)
    counting = CountingEmbeddings(embeddings)
    engine = Engine(worker, open_index(worker, counting), embeddings)
    assert counting.embedded == 0  # nothing embedded: it read the passages
    assert (worker.index_dir / "lexical-v1").is_dir() and not (worker.index_dir / "chroma").exists()
    answer = engine.ask("Is it bad to lock my knees at the top?")
    assert answer.status.value == "answered"


def test_a_build_from_a_third_machine_is_incremental_and_served_by_two_engines(
    chroma: ChromaServer, corpus_copy: Path, tmp_path, embeddings
):
    build_index(machine(corpus_copy, tmp_path, "first-builder", chroma.url), embeddings)
    engines = []
    for name in ("worker-a", "worker-b"):
        settings = machine(corpus_copy, tmp_path, name, chroma.url)
        engines.append(Engine(settings, open_index(settings, embeddings), embeddings))
    assert all("velcro" not in e.ask("Do knee sleeves help?").answer for e in engines)

    third = machine(corpus_copy, tmp_path, "third", chroma.url)
    edit(third.corpus_dir)
    report = build_index(third, CountingEmbeddings(embeddings))
    assert report.version == 2 and not report.rebuilt_from_scratch and 0 < report.added < 5
    for engine in engines:
        assert engine.refresh(force=True) and engine.index.manifest.version == 2
        assert "velcro knee sleeves" in engine.ask("Do knee sleeves help?").answer.lower()
        assert sorted(p.name for p in engine.settings.index_dir.iterdir()) == ["lexical-v1", "lexical-v2"]


def test_a_discarded_index_withdraws_the_pointer(chroma: ChromaServer, corpus_copy: Path, tmp_path, embeddings):
    settings = machine(corpus_copy, tmp_path, "only", chroma.url)
    build_index(settings, embeddings)
    discard_index(settings)
    assert live_pointer(settings).read() is None
    assert build_index(settings, embeddings).rebuilt_from_scratch


def test_two_app_instances_with_their_own_index_dirs_serve_a_reindex_from_a_third_machine(
    chroma: ChromaServer, corpus_copy: Path, tmp_path: Path, embeddings
) -> None:
    build_index(machine(corpus_copy, tmp_path, "first-builder", chroma.url), embeddings)
    apps = []
    for name in ("a", "b"):
        settings = machine(corpus_copy, tmp_path, name, chroma.url)  # an empty index dir: the worker makes BM25
        apps.append(AppProcess(settings.index_dir.parent, corpus_dir=settings.corpus_dir,
                               index_dir=settings.index_dir, chroma_url=chroma.url))  # fmt: skip
    for app in apps:
        app.start()
    try:
        for app in apps:
            app.wait_ready(180)
            assert app.health().json()["index_version"] == 1  # type: ignore[union-attr]
        third = machine(corpus_copy, tmp_path, "third", chroma.url)
        edit(third.corpus_dir)
        env = {**apps[0].env, "BOT_INDEX_DIR": str(third.index_dir), "BOT_CORPUS_DIR": str(third.corpus_dir)}
        build = subprocess.run([sys.executable, "-m", "bot", "index"], cwd=PROJECT_ROOT, env=env,
                               capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        built = time.monotonic()
        assert build.returncode == 0, build.stderr
        assert "Index v2" in build.stdout

        def both_serve_v2() -> bool:
            return all((r := app.health()) is not None and r.json()["index_version"] == 2 for app in apps)

        wait_for(both_serve_v2, PICKUP_SECONDS)
        seconds = time.monotonic() - built
        print(f"both instances serve v2 {seconds:.2f} s after the build ended")
        for app in apps:
            reply = httpx.post(f"{app.url}/api/chat", json={"message": "Do knee sleeves help?"}, timeout=60).json()
            assert "velcro knee sleeves" in reply["answer"].lower()
            assert not (Path(app.env["BOT_INDEX_DIR"]) / "manifest.json").exists()  # the pointer came from the store
            assert "Traceback" not in app.stderr()
    finally:
        for app in apps:
            app.__exit__(None, None, None)
    assert connect(third).stores(third)  # the server is still up and shared
