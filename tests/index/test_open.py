import logging
import shutil

import pytest

from bot.index import IndexFiles, IndexUnavailable, build_index, load_index, open_index, read_manifest
from bot.index.store import forget_chroma_clients
from bot.settings import Settings
from tests.index.conftest import edit

pytestmark = pytest.mark.integration


def test_a_corpus_edit_is_detected_and_never_served_silently(settings: Settings, counting, caplog) -> None:
    build_index(settings, counting)
    edit(settings.corpus_dir, "Using knee sleeves can help", "Knee sleeves might help")
    with pytest.raises(IndexUnavailable, match="articles edited: leg-press-knee-pain"):
        open_index(settings, counting, rebuild=False)
    with caplog.at_level(logging.WARNING, logger="bot.index"):
        index = open_index(settings, counting)
    assert "articles edited: leg-press-knee-pain" in caplog.text
    assert any("Knee sleeves might help" in c.text for c in index.passages.values())


def test_a_corrupted_store_is_rebuilt(settings: Settings, counting, caplog) -> None:
    build_index(settings, counting)
    forget_chroma_clients()
    (IndexFiles(settings.index_dir).chroma / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="bot.index"):
        index = open_index(settings, counting)
    assert "damaged" in caplog.text or "could not be opened" in caplog.text
    assert len(index.passages) > 30


def test_a_missing_part_is_detected(settings: Settings, counting) -> None:
    build_index(settings, counting)
    shutil.rmtree(IndexFiles(settings.index_dir).lexical(1))
    with pytest.raises(IndexUnavailable, match="damaged"):
        open_index(settings, counting, rebuild=False)


def test_a_running_engine_switches_to_a_newer_version_without_restarting(settings: Settings, counting) -> None:
    from bot.engine.engine import Engine

    engine = Engine(settings, open_index(settings, counting), counting)
    assert "good knee sleeves" not in engine.ask("Do knee sleeves help?").answer
    edit(settings.corpus_dir, "Using knee sleeves can help", "Using good knee sleeves can help")
    build_index(settings, counting)  # as another process would
    assert engine.refresh(force=True)
    assert engine.index.manifest.version == 2
    assert "good knee sleeves" in engine.ask("Do knee sleeves help?").answer.lower()


def test_a_newer_version_reuses_the_previous_ones_store_connection_and_passage_cache(
    settings: Settings, counting
) -> None:
    first = open_index(settings, counting)
    first.passages.values()  # every record read once, now in the cache
    edit(settings.corpus_dir, "Using knee sleeves can help", "Using good knee sleeves can help")
    build_index(settings, counting)
    newer = load_index(settings, read_manifest(settings.index_dir), previous=first)
    assert newer.manifest.version == 2 and newer.connection is first.connection
    assert newer.passages.cache is first.passages.cache
    [edited] = set(newer.passages) - set(first.passages)
    # content-addressed ids: every passage but the edited one is already cached, whichever version read it
    assert [i for i in newer.passages if newer.passages.cache.peek(i) is None] == [edited]
    assert "good knee sleeves" in newer.passages[edited].text
