import logging
from pathlib import Path

import chromadb
import pytest
from langchain_core.embeddings import Embeddings

import bot.index.build
from bot.index import IndexFiles, build_index, load_index, open_index, read_manifest, stale_reasons
from bot.index.build import _embed_into
from bot.index.store import ChromaStore
from bot.settings import Settings
from tests.fakes import InMemoryStore
from tests.index.conftest import CountingEmbeddings, edit


@pytest.mark.integration
def test_a_fresh_build_records_what_it_was_built_from(settings: Settings, counting) -> None:
    report = build_index(settings, counting)
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None and manifest.version == 1
    assert manifest.chunk_count == report.chunk_count == report.added > 30
    assert list(manifest.documents) == ["leg-press-knee-pain"]
    assert manifest.embedding_model == "all-MiniLM-L6-v2" and manifest.embedding_dim == 384
    assert stale_reasons(settings, manifest) == []


@pytest.mark.integration
def test_rebuilding_an_unchanged_corpus_embeds_nothing(settings: Settings, counting) -> None:
    build_index(settings, counting)
    counting.embedded = 0
    report = build_index(settings, counting)
    assert (report.added, report.removed, counting.embedded) == (0, 0, 0)
    assert report.version == 1  # nothing changed, so readers keep the same version


@pytest.mark.integration
def test_an_edit_re_embeds_only_the_changed_passage(settings: Settings, counting) -> None:
    first = build_index(settings, counting)
    edit(settings.corpus_dir, "Using knee sleeves can help", "Using good knee sleeves can help")
    counting.embedded = 0
    report = build_index(settings, counting)
    assert (report.added, report.removed, report.kept) == (1, 1, first.chunk_count - 1)
    assert counting.embedded == 2  # the passage and its one sentence
    assert report.version == 2


@pytest.mark.integration
def test_a_removed_article_is_removed_from_the_index(settings: Settings, counting, engine) -> None:
    (settings.corpus_dir / "extra.md").write_text("---\ntitle: Extra\n---\nWall sits are easy on the knees.\n")
    build_index(settings, counting)
    (settings.corpus_dir / "extra.md").unlink()
    report = build_index(settings, counting)
    assert report.removed == 1
    index = open_index(settings, counting, rebuild=False)
    assert not any(c.doc_id == "extra" for c in index.passages.values())


@pytest.mark.integration
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


@pytest.mark.integration
def test_a_build_killed_half_way_leaves_the_live_index_serving_and_is_resumed(settings, counting, caplog) -> None:
    build_index(settings, counting)
    edit(settings.corpus_dir, "Using knee sleeves can help", "Using good knee sleeves can help")
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, FailingEmbeddings(counting.inner, budget=1))  # the passage, not its sentence
    assert read_manifest(settings.index_dir).version == 1
    live = load_index(settings, read_manifest(settings.index_dir))
    assert any("Using knee sleeves can help" in c.text for c in live.passages.values())
    counting.embedded = 0
    with caplog.at_level(logging.WARNING, logger="bot.index"):
        index = open_index(settings, counting)
    assert "did not finish" in caplog.text
    assert counting.embedded == 1  # only the sentence; the killed build's passage vector was reused
    assert index.manifest.version == 2 and any("good knee sleeves" in c.text for c in index.passages.values())
    assert not IndexFiles(settings.index_dir).pending.exists()


class LengthEmbeddings(Embeddings):
    """A vector that says which text it was made from (its length and first letter), recording each call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [[float(len(t)), float(ord(t[0])), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


@pytest.mark.integration
def test_a_build_embeds_longest_first_in_groups_and_stores_each_text_with_its_own_vector(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(bot.index.build, "_EMBED_GROUP", 4)
    collection = chromadb.PersistentClient(path=str(tmp_path / "chroma")).create_collection("texts")
    rows = [(f"id{n}", chr(ord("a") + n % 26) * (1 + (n * 7) % 11), {"n": n}) for n in range(10)]
    model, progress = LengthEmbeddings(), []
    model_seconds, store_seconds = _embed_into(ChromaStore(collection), rows, model, progress.append)

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


def test_a_failed_store_write_stops_the_build(monkeypatch) -> None:
    class RefusingStore(InMemoryStore):
        def upsert(self, ids, vectors, documents, metadatas) -> None:
            raise OSError("disk full")

    monkeypatch.setattr(bot.index.build, "_EMBED_GROUP", 2)
    model = LengthEmbeddings()
    rows = [(f"id{n}", "x" * (n + 1), {}) for n in range(6)]
    with pytest.raises(OSError, match="disk full"):
        _embed_into(RefusingStore(), rows, model, lambda n: None)
    assert len(model.calls) == 1  # stopped at the first group, not after embedding everything
