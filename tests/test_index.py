import logging
import shutil
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from bot.index.core import (
    IndexFiles,
    IndexUnavailable,
    build_index,
    load_index,
    open_index,
    read_manifest,
    stale_reasons,
)
from bot.settings import Settings

pytestmark = pytest.mark.integration


class CountingEmbeddings(Embeddings):
    """The real model, counting how many passages it is asked to embed."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.embedded = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture
def counting(embeddings) -> CountingEmbeddings:
    return CountingEmbeddings(embeddings)


@pytest.fixture
def settings(corpus_copy: Path, tmp_path: Path) -> Settings:
    return Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index")


def edit(corpus: Path, old: str, new: str) -> None:
    article = corpus / "leg-press-knee-pain.md"
    text = article.read_text(encoding="utf-8")
    assert old in text
    article.write_text(text.replace(old, new), encoding="utf-8")


def test_a_fresh_build_records_what_it_was_built_from(settings: Settings, counting) -> None:
    report = build_index(settings, counting)
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None and manifest.version == 1
    assert manifest.chunk_count == report.chunk_count == report.added > 30
    assert list(manifest.documents) == ["leg-press-knee-pain"]
    assert manifest.embedding_model == "all-MiniLM-L6-v2" and manifest.embedding_dim == 384
    assert stale_reasons(settings, manifest) == []


def test_rebuilding_an_unchanged_corpus_embeds_nothing(settings: Settings, counting) -> None:
    build_index(settings, counting)
    counting.embedded = 0
    report = build_index(settings, counting)
    assert (report.added, report.removed, counting.embedded) == (0, 0, 0)
    assert report.version == 1  # nothing changed, so readers keep the same version


def test_an_edit_re_embeds_only_the_changed_passage(settings: Settings, counting) -> None:
    first = build_index(settings, counting)
    edit(settings.corpus_dir, "Using knee sleeves can help", "Using good knee sleeves can help")
    counting.embedded = 0
    report = build_index(settings, counting)
    assert (report.added, report.removed, report.kept) == (1, 1, first.chunk_count - 1)
    assert counting.embedded == 2  # the passage and its one sentence
    assert report.version == 2


def test_a_removed_article_is_removed_from_the_index(settings: Settings, counting, engine) -> None:
    (settings.corpus_dir / "extra.md").write_text("---\ntitle: Extra\n---\nWall sits are easy on the knees.\n")
    build_index(settings, counting)
    (settings.corpus_dir / "extra.md").unlink()
    report = build_index(settings, counting)
    assert report.removed == 1
    index = open_index(settings, counting, rebuild=False)
    assert not any(c.doc_id == "extra" for c in index.chunks.values())


def test_a_corpus_edit_is_detected_and_never_served_silently(settings: Settings, counting, caplog) -> None:
    build_index(settings, counting)
    edit(settings.corpus_dir, "Using knee sleeves can help", "Knee sleeves might help")
    with pytest.raises(IndexUnavailable, match="articles edited: leg-press-knee-pain"):
        open_index(settings, counting, rebuild=False)
    with caplog.at_level(logging.WARNING, logger="bot.index"):
        index = open_index(settings, counting)
    assert "articles edited: leg-press-knee-pain" in caplog.text
    assert any("Knee sleeves might help" in c.text for c in index.chunks.values())


def test_a_changed_embedding_model_rebuilds_from_scratch(settings: Settings, counting, caplog) -> None:
    from bot.models.embedding import resolve_model_path

    build_index(settings, counting)
    other = settings.model_copy(update={"embedding_model": str(resolve_model_path("all-MiniLM-L6-v2"))})
    assert any("embedding model changed" in r for r in stale_reasons(other, read_manifest(settings.index_dir)))
    counting.embedded = 0
    report = build_index(other, counting)
    assert report.rebuilt_from_scratch and counting.embedded > 100


class FailingEmbeddings(CountingEmbeddings):
    """Dies after embedding ``budget`` texts, like a build killed half-way."""

    def __init__(self, inner: Embeddings, budget: int) -> None:
        super().__init__(inner)
        self.budget = budget

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.embedded + len(texts) > self.budget:
            raise KeyboardInterrupt("killed mid-build")
        return super().embed_documents(texts)


def test_a_build_killed_half_way_leaves_the_live_index_serving_and_is_resumed(settings, counting, caplog) -> None:
    build_index(settings, counting)
    edit(settings.corpus_dir, "Using knee sleeves can help", "Using good knee sleeves can help")
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, FailingEmbeddings(counting.inner, budget=1))  # the passage, not its sentence
    assert read_manifest(settings.index_dir).version == 1
    live = load_index(settings, read_manifest(settings.index_dir))
    assert any("Using knee sleeves can help" in c.text for c in live.chunks.values())
    counting.embedded = 0
    with caplog.at_level(logging.WARNING, logger="bot.index"):
        index = open_index(settings, counting)
    assert "did not finish" in caplog.text
    assert counting.embedded == 1  # only the sentence; the killed build's passage vector was reused
    assert index.manifest.version == 2 and any("good knee sleeves" in c.text for c in index.chunks.values())
    assert not IndexFiles(settings.index_dir).pending.exists()


def test_a_corrupted_store_is_rebuilt(settings: Settings, counting, caplog) -> None:
    build_index(settings, counting)
    from bot.index.core import _forget_chroma_clients

    _forget_chroma_clients()
    (IndexFiles(settings.index_dir).chroma / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="bot.index"):
        index = open_index(settings, counting)
    assert "damaged" in caplog.text or "could not be opened" in caplog.text
    assert len(index.chunks) > 30


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


class LengthEmbeddings(Embeddings):
    """A vector that says which text it was made from (its length and first letter), recording each call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [[float(len(t)), float(ord(t[0])), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_a_build_embeds_longest_first_in_groups_and_stores_each_text_with_its_own_vector(
    tmp_path: Path, monkeypatch
) -> None:
    import chromadb

    import bot.index.core

    monkeypatch.setattr(bot.index.core, "_EMBED_GROUP", 4)
    collection = chromadb.PersistentClient(path=str(tmp_path / "chroma")).create_collection("texts")
    rows = [(f"id{n}", chr(ord("a") + n % 26) * (1 + (n * 7) % 11), {"n": n}) for n in range(10)]
    model, progress = LengthEmbeddings(), []
    model_seconds, store_seconds = bot.index._embed_into(collection, rows, model, progress.append)

    assert model_seconds > 0 and store_seconds > 0
    assert [len(call) for call in model.calls] == [4, 4, 2] and progress == [4, 4, 2]
    lengths = [len(text) for call in model.calls for text in call]
    assert lengths == sorted(lengths, reverse=True)  # similar lengths share a batch: little padding
    stored = collection.get(ids=[i for i, _, _ in rows], include=["embeddings", "documents", "metadatas"])
    for chunk_id, vector, document, meta in zip(
        stored["ids"], stored["embeddings"], stored["documents"], stored["metadatas"], strict=True
    ):
        n = int(chunk_id[2:])
        assert document == rows[n][1] and meta == {"n": n}
        assert list(vector) == [float(len(document)), float(ord(document[0])), 1.0]


def test_a_failed_store_write_stops_the_build(tmp_path: Path, monkeypatch) -> None:
    import bot.index.core

    class RefusingCollection:
        def add(self, **kwargs) -> None:
            raise OSError("disk full")

    monkeypatch.setattr(bot.index.core, "_EMBED_GROUP", 2)
    model = LengthEmbeddings()
    rows = [(f"id{n}", "x" * (n + 1), {}) for n in range(6)]
    with pytest.raises(OSError, match="disk full"):
        bot.index._embed_into(RefusingCollection(), rows, model, lambda n: None)
    assert len(model.calls) == 1  # stopped at the first group, not after embedding everything
