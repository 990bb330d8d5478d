"""Build, check and open the index: Chroma vectors (chunks and quotable sentences), BM25, and a manifest.

The manifest records what the index was built from (embedding model, chunker, a hash per article).
Opening compares it with the corpus on disk; a changed model, a corpus edit, a half-written build or
a corrupted store is reported in plain words and rebuilt, so no question is answered from a stale index.
Rebuilding is incremental: chunk ids are content hashes, so unchanged chunks keep their vectors.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from pydantic import BaseModel, ValidationError

from bot.chunking import CHUNKER_VERSION, chunk_document
from bot.corpus import corpus_fingerprint, load_corpus
from bot.lexical import LexicalIndex
from bot.settings import Settings
from bot.types import Chunk, Sentence

log = logging.getLogger("bot.index")

_BATCH = 64


class IndexUnavailable(RuntimeError):
    """The index cannot be opened or built; the message says why in plain words."""


class Manifest(BaseModel):
    """What an index was built from; written last, so a half-written build is recognisable."""

    status: Literal["building", "complete"]
    embedding_model: str
    embedding_dim: int
    chunker: str
    corpus: dict[str, str]
    chunk_count: int = 0
    sentence_count: int = 0
    version: int = 0
    built_at: str = ""


@dataclass(frozen=True)
class IndexFiles:
    """Where each part of the index lives under ``BOT_INDEX_DIR``."""

    root: Path

    @property
    def manifest(self) -> Path:
        """What the index was built from."""
        return self.root / "manifest.json"

    @property
    def chroma(self) -> Path:
        """The Chroma store."""
        return self.root / "chroma"

    @property
    def chunks(self) -> Path:
        """The passages, one JSON object per line."""
        return self.root / "chunks.jsonl"

    @property
    def lexical(self) -> Path:
        """The BM25 index."""
        return self.root / "lexical"


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    added: int
    removed: int
    kept: int
    chunk_count: int
    seconds: float
    version: int
    rebuilt_from_scratch: bool = False


#: The vector stores of an index: each passage, and each quotable sentence on its own.
VIEWS = ("text", "sentences")


@dataclass
class Index:
    """An opened, verified index: the chunk table, BM25 and one vector store per view."""

    manifest: Manifest
    chunks: dict[str, Chunk]
    lexical: LexicalIndex
    stores: dict[str, VectorStore]


# -- storage -----------------------------------------------------------------------------------


def _chunker_id(settings: Settings) -> str:
    return f"{CHUNKER_VERSION}/{settings.chunk_max_chars}"


def _chroma_client(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))


def _forget_chroma_clients() -> None:
    # Chroma caches one system per path; after deleting the folder it must not be reused.
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _vector_store(client: Any, name: str, embeddings: Embeddings) -> VectorStore:
    from langchain_chroma import Chroma

    return Chroma(
        collection_name=name,
        client=client,
        embedding_function=embeddings,
        collection_configuration={"hnsw": {"space": "cosine"}},
        relevance_score_fn=lambda distance: 1.0 - distance,
    )


def _stores(settings: Settings, embeddings: Embeddings) -> dict[str, VectorStore]:
    client = _chroma_client(IndexFiles(settings.index_dir).chroma)
    return {view: _vector_store(client, f"{settings.collection}-{view}", embeddings) for view in VIEWS}


def _rows(chunks: list[Chunk]) -> dict[str, dict[str, tuple[str, dict[str, Any]]]]:
    """What each view stores: id → (text to embed, metadata)."""

    def meta(c: Chunk) -> dict[str, Any]:
        return {"doc_id": c.doc_id, "section": c.section_path, "start": c.start, "end": c.end}

    return {
        "text": {c.chunk_id: (c.plain_text, meta(c)) for c in chunks},
        "sentences": {
            sid: (c.sentence_text(s), {"chunk_id": c.chunk_id}) for c in chunks for sid, s in quotable_sentences(c)
        },
    }


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(index_dir: Path) -> Manifest | None:
    """The manifest, or ``None`` when it is missing or unreadable."""
    try:
        return Manifest.model_validate_json(IndexFiles(index_dir).manifest.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError):
        return None


def _chunk_to_json(chunk: Chunk) -> str:
    record = asdict(chunk)
    record["sentences"] = [[s.start, s.end, s.quotable, s.is_list] for s in chunk.sentences]
    return json.dumps(record, ensure_ascii=False)


def _chunk_from_json(line: str) -> Chunk:
    record = json.loads(line)
    record["section"] = tuple(record["section"])
    record["sentences"] = tuple(Sentence(*values) for values in record["sentences"])
    return Chunk(**record)


def sentence_id(chunk: Chunk, position: int) -> str:
    """Vector-store id of the ``position``-th sentence of ``chunk``."""
    return f"{chunk.chunk_id}/{position}"


def quotable_sentences(chunk: Chunk) -> Iterable[tuple[str, Sentence]]:
    """The sentences of ``chunk`` an answer may quote, with their vector-store ids."""
    for position, sentence in enumerate(chunk.sentences):
        if sentence.quotable:
            yield sentence_id(chunk, position), sentence


# -- checking ----------------------------------------------------------------------------------


def stale_reasons(settings: Settings, manifest: Manifest | None) -> list[str]:
    """Why the index on disk cannot serve the current corpus and model (empty when it can)."""
    if manifest is None:
        return ["there is no index yet"]
    reasons = []
    if manifest.status != "complete":
        reasons.append("the last build did not finish")
    if manifest.embedding_model != settings.embedding_model:
        reasons.append(f"the embedding model changed ({manifest.embedding_model} → {settings.embedding_model})")
    if manifest.chunker != _chunker_id(settings):
        reasons.append("the chunking rules or passage size changed")
    current = corpus_fingerprint(settings.corpus_dir)
    added = current.keys() - manifest.corpus.keys()
    removed = manifest.corpus.keys() - current.keys()
    edited = [d for d in current.keys() & manifest.corpus.keys() if current[d] != manifest.corpus[d]]
    for label, docs in (("added", added), ("removed", removed), ("edited", edited)):
        if docs:
            reasons.append(f"articles {label}: {', '.join(sorted(docs))}")
    return reasons


# -- building ----------------------------------------------------------------------------------


def _sync_store(
    store: VectorStore,
    wanted: dict[str, tuple[str, dict[str, Any]]],
    progress: Callable[[int], None],
) -> tuple[int, int, int]:
    """Make ``store`` hold exactly ``wanted`` (id → text, metadata); embeds only the new ids."""
    existing = set(store.get(include=[])["ids"])  # type: ignore[attr-defined]
    stale = sorted(existing - wanted.keys())
    if stale:
        store.delete(ids=stale)
    new = [i for i in wanted if i not in existing]
    for start in range(0, len(new), _BATCH):
        batch = new[start : start + _BATCH]
        store.add_texts([wanted[i][0] for i in batch], metadatas=[wanted[i][1] for i in batch], ids=batch)
        progress(len(batch))
    return len(new), len(stale), len(existing & wanted.keys())


def _count_new(store: VectorStore, ids: Iterable[str]) -> int:
    existing = set(store.get(include=[])["ids"])  # type: ignore[attr-defined]
    return sum(1 for i in ids if i not in existing)


def build_index(settings: Settings, embeddings: Embeddings, *, show_progress: bool = False) -> BuildReport:
    """Bring the index in line with the corpus, re-embedding only what changed."""
    started = time.perf_counter()
    files = IndexFiles(settings.index_dir)
    documents = load_corpus(settings.corpus_dir)
    fingerprint = corpus_fingerprint(settings.corpus_dir)
    chunks = [c for d in documents for c in chunk_document(d, settings.chunk_max_chars)]
    dim = len(embeddings.embed_query("dimension probe"))
    previous = read_manifest(settings.index_dir)
    from_scratch = previous is None or (
        previous.embedding_model != settings.embedding_model or previous.embedding_dim != dim
    )
    if from_scratch and files.chroma.exists():
        _forget_chroma_clients()
        shutil.rmtree(files.chroma)
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    building = Manifest(
        status="building", embedding_model=settings.embedding_model, embedding_dim=dim,
        chunker=_chunker_id(settings), corpus=fingerprint, version=previous.version if previous else 0,
    )  # fmt: skip
    _write_atomically(files.manifest, building.model_dump_json(indent=2))

    try:
        stores = _stores(settings, embeddings)
    except Exception as error:
        log.warning("The vector store could not be opened (%s); rebuilding it from scratch.", error)
        _forget_chroma_clients()
        shutil.rmtree(files.chroma, ignore_errors=True)
        stores = _stores(settings, embeddings)
        from_scratch = True

    rows = _rows(chunks)
    total = sum(_count_new(stores[view], rows[view]) for view in VIEWS)
    from tqdm import tqdm

    with tqdm(total=total, unit="text", desc="Embedding", disable=not show_progress or total == 0) as bar:
        synced = {view: _sync_store(stores[view], rows[view], bar.update) for view in VIEWS}
    added, removed, kept = synced["text"]

    _write_atomically(files.chunks, "".join(_chunk_to_json(c) + "\n" for c in chunks))
    lexical_tmp = files.lexical.with_name("lexical.tmp")
    shutil.rmtree(lexical_tmp, ignore_errors=True)
    LexicalIndex.build([c.chunk_id for c in chunks], [c.headed_text for c in chunks]).save(lexical_tmp)
    shutil.rmtree(files.lexical, ignore_errors=True)
    os.replace(lexical_tmp, files.lexical)

    changed = bool(added or removed) or previous is None or previous.status != "complete"
    version = building.version + 1 if changed else building.version
    complete = building.model_copy(
        update={
            "status": "complete", "chunk_count": len(chunks), "sentence_count": len(rows["sentences"]),
            "version": version, "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )  # fmt: skip
    _write_atomically(files.manifest, complete.model_dump_json(indent=2))
    return BuildReport(
        added=added, removed=removed, kept=kept, chunk_count=len(chunks),
        seconds=time.perf_counter() - started, version=version, rebuilt_from_scratch=from_scratch,
    )  # fmt: skip


# -- opening -----------------------------------------------------------------------------------


def _load(settings: Settings, embeddings: Embeddings, manifest: Manifest) -> Index:
    files = IndexFiles(settings.index_dir)
    chunks = {c.chunk_id: c for c in map(_chunk_from_json, files.chunks.read_text(encoding="utf-8").splitlines())}
    lexical = LexicalIndex.load(files.lexical)
    stores = _stores(settings, embeddings)
    expected = {"table": manifest.chunk_count, "lexical": manifest.chunk_count, "text": manifest.chunk_count,
                "sentences": manifest.sentence_count}  # fmt: skip
    found = {"table": len(chunks), "lexical": len(lexical.chunk_ids)} | {
        view: store._collection.count()  # type: ignore[attr-defined]
        for view, store in stores.items()
    }
    if found != expected:
        raise IndexUnavailable(f"its parts disagree (found {found}, the manifest says {expected})")
    return Index(manifest, chunks, lexical, stores)


def open_index(
    settings: Settings, embeddings: Embeddings, *, rebuild: bool = True, show_progress: bool = False
) -> Index:
    """Open the index, rebuilding it first (and saying why) when it is missing, stale or broken."""
    reasons = stale_reasons(settings, read_manifest(settings.index_dir))
    if reasons and not rebuild:
        raise IndexUnavailable(f"The index in {settings.index_dir} is out of date: {'; '.join(reasons)}.")
    if reasons:
        log.warning("Building the index (%s)…", "; ".join(reasons))
        report = build_index(settings, embeddings, show_progress=show_progress)
        log.warning("Index ready: %d passages (%d embedded, %d removed) in %.1f s.",
                    report.chunk_count, report.added, report.removed, report.seconds)  # fmt: skip
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None
    try:
        return _load(settings, embeddings, manifest)
    except Exception as error:
        if not rebuild:
            raise IndexUnavailable(f"The index in {settings.index_dir} is damaged ({error}).") from error
        log.warning("The index in %s is damaged (%s); rebuilding it from scratch.", settings.index_dir, error)
        _forget_chroma_clients()
        shutil.rmtree(settings.index_dir / "chroma", ignore_errors=True)
        IndexFiles(settings.index_dir).manifest.unlink(missing_ok=True)
        build_index(settings, embeddings, show_progress=show_progress)
        manifest = read_manifest(settings.index_dir)
        assert manifest is not None
        return _load(settings, embeddings, manifest)
