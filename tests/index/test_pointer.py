"""The live-version pointer in a store (over ``InMemoryStore``) and a BM25 index made from stored passages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content.chunking import chunk_document
from bot.content.corpus import article_paths, load_document
from bot.index.lexical import LexicalIndex
from bot.index.manifest import DocumentEntry, IndexFiles, Manifest
from bot.index.pointer import FilePointer, StorePointer
from bot.index.records import encode_passage
from bot.index.restore import LexicalRestoreError, restore_lexical
from tests.conftest import CORPUS as CORPUS_DIR
from tests.fakes import InMemoryStore


def manifest(version: int, chunks: dict[str, list[str]]) -> Manifest:
    documents = {d: DocumentEntry(sha256=d, chunk_ids=ids) for d, ids in chunks.items()}
    return Manifest(version=version, embedding_model="m", embedding_dim=1, chunker="c", documents=documents,
                    chunk_count=sum(map(len, chunks.values())), built_at=f"2026-12-01T00:00:0{version}")  # fmt: skip


def test_the_store_pointer_switches_in_one_record_and_falls_back_to_the_file(tmp_path: Path) -> None:
    local = FilePointer(IndexFiles(tmp_path / "index"))
    pointer = StorePointer(InMemoryStore(), local)
    assert pointer.read() is None and pointer.stamp() == ("file", 0)
    old = manifest(1, {"a": ["a1"]})
    local.publish(old)  # built before the pointer was kept in the store
    assert pointer.read() == old
    for version in (2, 3, 4):
        pointer.publish(manifest(version, {"a": [f"a{version}"]}))
    assert pointer.read() == manifest(4, {"a": ["a4"]}) and pointer.stamp() == (4, "2026-12-01T00:00:04")
    assert local.read() == manifest(4, {"a": ["a4"]})
    assert set(pointer.store.records(["manifest-v2", "manifest-v3", "manifest-v4"])) == {"manifest-v3", "manifest-v4"}
    pointer.withdraw()
    assert pointer.read() == local.read()  # the file again


@pytest.fixture
def stored() -> tuple[InMemoryStore, dict[str, list[str]]]:
    """The corpus's passages as a build stores them, and each article's chunk ids."""
    store, chunks = InMemoryStore(), {}
    for path in article_paths(CORPUS_DIR)[:3]:
        document = chunk_document(load_document(path, CORPUS_DIR), 900)
        chunks[path.stem] = [c.chunk_id for c in document]
        store.upsert([c.chunk_id for c in document], [[1.0]] * len(document), [c.plain_text for c in document],
                     [encode_passage(c) for c in document])  # fmt: skip
    return store, chunks


def test_a_bm25_index_is_made_from_the_store_whole_or_from_an_older_version(tmp_path: Path, stored) -> None:
    store, chunks = stored
    first, *rest = chunks
    v1 = manifest(1, {first: chunks[first]})
    lexical = restore_lexical(tmp_path / "lexical-v1", v1, store)
    assert len(lexical) == v1.chunk_count and lexical.search("knee", 1)
    v2 = manifest(2, {d: chunks[d] for d in rest})
    store.reads.clear()
    again = restore_lexical(tmp_path / "lexical-v2", v2, store, base=(v1, tmp_path / "lexical-v1"))
    assert len(again) == v2.chunk_count
    assert {i for read in store.reads for i in read} == set(v2.chunk_ids)  # only the passages it lacked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lexical-v1", "lexical-v2"]
    assert len(LexicalIndex(tmp_path / "lexical-v1")) == v1.chunk_count  # the older one is left as it was


def test_a_passage_missing_from_the_store_leaves_no_folder(tmp_path: Path, stored) -> None:
    store, chunks = stored
    broken = manifest(1, {"x": ["not-stored", *next(iter(chunks.values()))]})
    with pytest.raises(LexicalRestoreError, match="missing 1 passages"):
        restore_lexical(tmp_path / "lexical-v1", broken, store)
    assert list(tmp_path.iterdir()) == []
