"""Shared fixtures: the real embedding model and a real Chroma index, loaded once per session."""

from __future__ import annotations

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
    from bot.embedding import load_embeddings

    return load_embeddings(threads=1)


@pytest.fixture(scope="session")
def index_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(corpus_dir=CORPUS, index_dir=tmp_path_factory.mktemp("index"))


@pytest.fixture(scope="session")
def engine(index_settings: Settings, embeddings):
    from bot.index import open_index
    from bot.pipeline import Engine

    return Engine(index_settings, open_index(index_settings, embeddings), embeddings)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A private copy of the corpus that a test may edit."""
    target = tmp_path / "corpus"
    target.mkdir()
    for path in CORPUS.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target
