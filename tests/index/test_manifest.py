import json
from pathlib import Path

from bot.index import IndexFiles, Manifest, read_manifest
from bot.index.manifest import chunker_id, read_pending, write_atomically, write_pending
from bot.settings import Settings

#: A manifest as builds have written it since version 1 of the format.
MANIFEST = {
    "version": 3,
    "embedding_model": "all-MiniLM-L6-v2",
    "embedding_dim": 384,
    "chunker": "4/450",
    "documents": {"leg-press": {"sha256": "ab" * 32, "chunk_ids": ["leg-press#1", "leg-press#2"]},
                  "sleeves": {"sha256": "cd" * 32, "chunk_ids": ["sleeves#1"]}},
    "chunk_count": 3,
    "built_at": "2026-11-27T10:00:00+00:00",
}  # fmt: skip


def test_the_layout_under_the_index_folder(tmp_path: Path) -> None:
    files = IndexFiles(tmp_path)
    assert files.manifest == tmp_path / "manifest.json"
    assert files.chroma == tmp_path / "chroma"
    assert files.pending == tmp_path / "pending.json"
    assert files.lock == tmp_path / "build.lock"
    assert files.lexical(7) == tmp_path / "lexical-v7"
    (tmp_path / "lexical-v1").mkdir()
    (tmp_path / "lexical-v2").mkdir()
    assert sorted(files.lexical_folders()) == [tmp_path / "lexical-v1", tmp_path / "lexical-v2"]


def test_the_manifest_reads_and_writes_the_same_format(tmp_path: Path) -> None:
    IndexFiles(tmp_path).manifest.write_text(json.dumps(MANIFEST), encoding="utf-8")
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.version == 3
    assert manifest.chunk_ids == ["leg-press#1", "leg-press#2", "sleeves#1"]  # article by article
    assert json.loads(manifest.model_dump_json()) == MANIFEST
    assert list(json.loads(manifest.model_dump_json())) == list(MANIFEST)  # and in the same order


def test_a_missing_or_unreadable_manifest_is_none(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) is None
    path = IndexFiles(tmp_path).manifest
    for text in ("not json", json.dumps({"version": 1}), ""):
        path.write_text(text, encoding="utf-8")
        assert read_manifest(tmp_path) is None


def test_an_atomic_write_replaces_the_file_and_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("old", encoding="utf-8")
    write_atomically(path, "new")
    assert path.read_text(encoding="utf-8") == "new" and sorted(tmp_path.iterdir()) == [path]


def test_the_pending_record_is_read_back_only_for_the_same_model(tmp_path: Path) -> None:
    files = IndexFiles(tmp_path)
    write_pending(files, "all-MiniLM-L6-v2", 384, set())
    assert not files.pending.exists()  # nothing pending: nothing written
    write_pending(files, "all-MiniLM-L6-v2", 384, {"b#2", "a#1"})
    assert json.loads(files.pending.read_text()) == {"embedding_model": "all-MiniLM-L6-v2", "embedding_dim": 384,
                                                     "chunk_ids": ["a#1", "b#2"]}  # fmt: skip
    assert read_pending(files, "all-MiniLM-L6-v2", 384) == {"a#1", "b#2"}
    assert read_pending(files, "other-model", 384) == set()
    assert read_pending(files, "all-MiniLM-L6-v2", 768) == set()
    files.pending.write_text("{broken", encoding="utf-8")
    assert read_pending(files, "all-MiniLM-L6-v2", 384) == set()


def test_the_chunker_id_records_the_rules_and_the_passage_size() -> None:
    assert chunker_id(Settings(chunk_max_chars=300)).endswith("/300")
    assert chunker_id(Settings()) != chunker_id(Settings(chunk_max_chars=300))
    assert Manifest.model_validate(MANIFEST).chunker == "4/450"
