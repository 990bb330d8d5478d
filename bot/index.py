"""Build, check and open the index: Chroma vectors (passages and quotable sentences), BM25, and a manifest.

Layout under ``BOT_INDEX_DIR``::

    manifest.json      the live version: what it was built from (model, chunker, a hash per article)
    v<N>/chunks.jsonl  that version's passages      v<N>/lexical/  its BM25 index
    chroma/            the vectors (embedded mode; with BOT_CHROMA_URL they live in a Chroma server)
    pending.json       vectors written by a build that has not switched yet

Vectors are content-addressed (a chunk id hashes what the chunk says and where), so a build only
embeds new passages, writes them beside the live ones, writes the next version's table and BM25,
and then switches ``manifest.json`` atomically; only after that are vectors no version needs deleted.
A reader never sees a half-built index, a killed build leaves the live one serving, and the next build
reuses whatever the killed one had already embedded. Opening compares the manifest with the corpus
and model on disk: anything stale or damaged is reported in plain words and rebuilt.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from pydantic import BaseModel, ValidationError

from bot.chunking import CHUNKER_VERSION, chunk_document
from bot.corpus import article_paths, corpus_fingerprint, load_document
from bot.lexical import LexicalIndex
from bot.settings import Settings
from bot.types import Chunk, Sentence

log = logging.getLogger("bot.index")

#: The vector stores of an index: each passage, and each quotable sentence on its own.
VIEWS = ("text", "sentences")
_BATCH = 128
_COSINE: Any = {"hnsw": {"space": "cosine"}}


class IndexUnavailable(RuntimeError):
    """The index cannot be opened or built; the message says why in plain words."""


class DocumentEntry(BaseModel):
    """One article as indexed: its content hash and its passages."""

    sha256: str
    chunk_ids: list[str]


class Manifest(BaseModel):
    """The live version of the index and what it was built from; replaced atomically by each build."""

    version: int
    embedding_model: str
    embedding_dim: int
    chunker: str
    documents: dict[str, DocumentEntry]
    chunk_count: int
    sentence_count: int
    built_at: str


@dataclass(frozen=True)
class IndexFiles:
    """Where each part of the index lives under ``BOT_INDEX_DIR``."""

    root: Path

    @property
    def manifest(self) -> Path:
        """The pointer to the live version."""
        return self.root / "manifest.json"

    @property
    def chroma(self) -> Path:
        """The embedded Chroma store."""
        return self.root / "chroma"

    @property
    def pending(self) -> Path:
        """Ids written to the store by a build that has not switched yet."""
        return self.root / "pending.json"

    def version(self, number: int) -> Path:
        """The folder of one version's passages and BM25 index."""
        return self.root / f"v{number}"

    def chunks(self, number: int) -> Path:
        """One version's passages, one JSON object per line."""
        return self.version(number) / "chunks.jsonl"

    def lexical(self, number: int) -> Path:
        """One version's BM25 index."""
        return self.version(number) / "lexical"


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    added: int
    removed: int
    kept: int
    chunk_count: int
    embedded_texts: int
    seconds: float
    embedding_seconds: float
    version: int
    rebuilt_from_scratch: bool = False


@dataclass
class Index:
    """An opened, verified version of the index: passages, BM25 and one vector store per view."""

    manifest: Manifest
    chunks: dict[str, Chunk]
    lexical: LexicalIndex
    stores: dict[str, VectorStore]
    #: The Chroma client behind the stores, reused when a newer version is opened.
    client: Any = None


# -- the vector store ----------------------------------------------------------------------------


def _collection_names(settings: Settings) -> dict[str, str]:
    return {view: f"{settings.collection}-{view}" for view in VIEWS}


def chroma_client(settings: Settings) -> Any:
    """A Chroma client: embedded (one process) by default, or the server at ``BOT_CHROMA_URL``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        from urllib.parse import urlparse

        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "127.0.0.1", port=url.port or 8000, ssl=url.scheme == "https", settings=chroma_settings
        )
    path = IndexFiles(settings.index_dir).chroma
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def store_description(settings: Settings) -> str:
    """Where the vectors live, for logs and health checks."""
    return f"chroma server {settings.chroma_url}" if settings.chroma_url else "embedded chroma (one process)"


def _forget_chroma_clients() -> None:
    # Chroma caches one system per path; after deleting the folder it must not be reused.
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _collections(client: Any, settings: Settings) -> dict[str, Any]:
    return {
        view: client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        for view, name in _collection_names(settings).items()
    }


def vector_stores(client: Any, settings: Settings, embeddings: Embeddings) -> dict[str, VectorStore]:
    """The LangChain vector stores the retrievers query, one per view."""
    from langchain_chroma import Chroma

    return {
        view: Chroma(
            collection_name=name,
            client=client,
            embedding_function=embeddings,
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        for view, name in _collection_names(settings).items()
    }


# -- small file helpers --------------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(index_dir: Path) -> Manifest | None:
    """The live manifest, or ``None`` when it is missing or unreadable."""
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


def read_chunks(path: Path) -> dict[str, Chunk]:
    """A version's passages by id, in corpus order."""
    with path.open(encoding="utf-8") as lines:
        return {c.chunk_id: c for c in map(_chunk_from_json, lines)}


def sentence_id(chunk: Chunk, position: int) -> str:
    """Vector-store id of the ``position``-th sentence of ``chunk``."""
    return f"{chunk.chunk_id}/{position}"


def quotable_sentences(chunk: Chunk) -> Iterable[tuple[str, Sentence]]:
    """The sentences of ``chunk`` an answer may quote, with their vector-store ids."""
    for position, sentence in enumerate(chunk.sentences):
        if sentence.quotable:
            yield sentence_id(chunk, position), sentence


@contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder (a second one waits)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / "build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- checking ------------------------------------------------------------------------------------


def _chunker_id(settings: Settings) -> str:
    return f"{CHUNKER_VERSION}/{settings.chunk_max_chars}"


def stale_reasons(settings: Settings, manifest: Manifest | None) -> list[str]:
    """Why the live index cannot serve the current corpus and model (empty when it can)."""
    if manifest is None:
        return ["there is no index yet"]
    reasons = []
    if manifest.embedding_model != settings.embedding_model:
        reasons.append(f"the embedding model changed ({manifest.embedding_model} → {settings.embedding_model})")
    if manifest.chunker != _chunker_id(settings):
        reasons.append("the chunking rules or passage size changed")
    current = corpus_fingerprint(settings.corpus_dir)
    indexed = {doc_id: entry.sha256 for doc_id, entry in manifest.documents.items()}
    changes = {
        "added": current.keys() - indexed.keys(),
        "removed": indexed.keys() - current.keys(),
        "edited": {d for d in current.keys() & indexed.keys() if current[d] != indexed[d]},
    }
    for label, docs in changes.items():
        if docs:
            shown = sorted(docs)
            more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
            reasons.append(f"articles {label}: {', '.join(shown[:5])}{more}")
    return reasons


# -- building ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    text: str
    metadata: dict[str, Any]


def _rows(chunks: Iterable[Chunk]) -> dict[str, dict[str, _Row]]:
    """What each view stores: id → text to embed and metadata."""
    rows: dict[str, dict[str, _Row]] = {view: {} for view in VIEWS}
    for c in chunks:
        rows["text"][c.chunk_id] = _Row(c.plain_text, {"doc_id": c.doc_id, "start": c.start, "end": c.end})
        for sid, s in quotable_sentences(c):
            rows["sentences"][sid] = _Row(c.sentence_text(s), {"chunk_id": c.chunk_id})
    return rows


def _chunk_corpus(settings: Settings, reusable: dict[str, list[Chunk]]) -> tuple[list[Chunk], dict[str, DocumentEntry]]:
    """The passages of every article, reusing those of articles whose content hash is unchanged."""
    fingerprint = corpus_fingerprint(settings.corpus_dir)
    chunks: list[Chunk] = []
    documents: dict[str, DocumentEntry] = {}
    for path in article_paths(settings.corpus_dir):
        doc_id = path.relative_to(settings.corpus_dir).with_suffix("").as_posix()
        key = f"{doc_id}\x1f{fingerprint[doc_id]}"
        doc_chunks = reusable.get(key)
        if doc_chunks is None:
            doc_chunks = chunk_document(load_document(path, settings.corpus_dir), settings.chunk_max_chars)
        chunks += doc_chunks
        documents[doc_id] = DocumentEntry(sha256=fingerprint[doc_id], chunk_ids=[c.chunk_id for c in doc_chunks])
    if not chunks:
        from bot.corpus import CorpusError

        raise CorpusError(f"The corpus folder {settings.corpus_dir} has no Markdown (.md) articles.")
    return chunks, documents


def _reusable_chunks(settings: Settings, manifest: Manifest | None) -> dict[str, list[Chunk]]:
    """The live version's passages grouped by article and content hash (empty if unreadable)."""
    if manifest is None:
        return {}
    try:
        table = read_chunks(IndexFiles(settings.index_dir).chunks(manifest.version))
    except (OSError, ValueError, TypeError):
        return {}
    return {
        f"{doc_id}\x1f{entry.sha256}": [table[i] for i in entry.chunk_ids]
        for doc_id, entry in manifest.documents.items()
        if all(i in table for i in entry.chunk_ids)
    }


def _embed_into(
    collection: Any, rows: dict[str, _Row], ids: list[str], embeddings: Embeddings, progress: Callable[[int], None]
) -> None:
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        vectors = embeddings.embed_documents([rows[i].text for i in batch])
        collection.add(
            ids=batch,
            embeddings=vectors,
            documents=[rows[i].text for i in batch],
            metadatas=[rows[i].metadata for i in batch],
        )
        progress(len(batch))


def _existing(collection: Any, ids: list[str]) -> set[str]:
    """Which of ``ids`` the collection already holds."""
    found: set[str] = set()
    for start in range(0, len(ids), 5000):
        found.update(collection.get(ids=ids[start : start + 5000], include=[])["ids"])
    return found


def build_index(settings: Settings, embeddings: Embeddings, *, show_progress: bool = False) -> BuildReport:
    """Bring the index in line with the corpus, embedding only what changed, then switch to it atomically."""
    with _build_lock(settings.index_dir):
        return _build(settings, embeddings, show_progress=show_progress)


def _build(settings: Settings, embeddings: Embeddings, *, show_progress: bool) -> BuildReport:
    started = time.perf_counter()
    files = IndexFiles(settings.index_dir)
    dim = len(embeddings.embed_query("dimension probe"))
    previous = read_manifest(settings.index_dir)
    pending = _read_pending(files, settings.embedding_model, dim)
    same_model = previous is not None and (previous.embedding_model, previous.embedding_dim) == (
        settings.embedding_model,
        dim,
    )
    from_scratch = not same_model and not (previous is None and pending)
    client = chroma_client(settings)
    if from_scratch:
        _delete_collections(client, settings)
        files.pending.unlink(missing_ok=True)
        previous, pending = None, {}
    collections = _collections(client, settings)

    chunks, documents = _chunk_corpus(settings, _reusable_chunks(settings, previous))
    rows = _rows(chunks)
    live_table = _reusable_chunks(settings, previous)
    live_rows = _rows(c for group in live_table.values() for c in group)
    live = {view: set(live_rows[view]) for view in VIEWS}

    # New ids a killed build already wrote are reused, not embedded again.
    to_embed: dict[str, list[str]] = {}
    for view in VIEWS:
        candidates = [i for i in rows[view] if i not in live[view]]
        already = _existing(collections[view], [i for i in candidates if i in pending.get(view, set())])
        to_embed[view] = [i for i in candidates if i not in already]
    _write_pending(
        files, settings.embedding_model, dim, {view: pending.get(view, set()) | set(to_embed[view]) for view in VIEWS}
    )

    from tqdm import tqdm

    total = sum(len(ids) for ids in to_embed.values())
    embedding_started = time.perf_counter()
    with tqdm(total=total, unit="text", desc="Embedding", disable=not show_progress or total == 0) as bar:
        for view in VIEWS:
            _embed_into(collections[view], rows[view], to_embed[view], embeddings, bar.update)
    embedding_seconds = time.perf_counter() - embedding_started

    version = (previous.version + 1) if previous else 1
    unchanged = previous is not None and all(set(rows[v]) == live[v] for v in VIEWS)
    if unchanged and previous is not None:
        version = previous.version
    else:
        _write_version(settings, version, chunks)
        manifest = Manifest(
            version=version,
            embedding_model=settings.embedding_model,
            embedding_dim=dim,
            chunker=_chunker_id(settings),
            documents=documents,
            chunk_count=len(chunks),
            sentence_count=len(rows["sentences"]),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        _write_atomically(files.manifest, manifest.model_dump_json(indent=1))  # the switch

    # Only now may vectors that no version needs go: readers of the old version just lose them from results.
    removed_chunks = 0
    for view in VIEWS:
        stale = sorted((live[view] | pending.get(view, set()) | set(to_embed[view])) - set(rows[view]))
        for start in range(0, len(stale), 5000):
            collections[view].delete(ids=stale[start : start + 5000])
        if view == "text":
            removed_chunks = len(stale)
    files.pending.unlink(missing_ok=True)
    _remove_old_versions(files, keep=version)
    return BuildReport(
        added=len(set(rows["text"]) - live["text"]),
        removed=removed_chunks,
        kept=len(set(rows["text"]) & live["text"]),
        chunk_count=len(chunks),
        embedded_texts=total,
        seconds=time.perf_counter() - started,
        embedding_seconds=embedding_seconds,
        version=version,
        rebuilt_from_scratch=from_scratch,
    )


def _delete_collections(client: Any, settings: Settings) -> None:
    from chromadb.errors import NotFoundError

    for name in _collection_names(settings).values():
        with suppress(NotFoundError, ValueError):  # nothing to delete
            client.delete_collection(name)


def _read_pending(files: IndexFiles, model: str, dim: int) -> dict[str, set[str]]:
    """Ids an unfinished build wrote with this same model (empty if none, or another model's)."""
    try:
        data = json.loads(files.pending.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if data.get("embedding_model") != model or data.get("embedding_dim") != dim:
        return {}
    return {view: set(data.get(view, [])) for view in VIEWS if data.get(view)}


def _write_pending(files: IndexFiles, model: str, dim: int, pending: dict[str, set[str]]) -> None:
    if any(pending.values()):
        record = {"embedding_model": model, "embedding_dim": dim} | {v: sorted(ids) for v, ids in pending.items()}
        _write_atomically(files.pending, json.dumps(record))


def _write_version(settings: Settings, version: int, chunks: list[Chunk]) -> None:
    """Write one version's passages and BM25 beside the live version, then move it into place."""
    files = IndexFiles(settings.index_dir)
    staging = files.root / f".v{version}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "chunks.jsonl").write_text("".join(_chunk_to_json(c) + "\n" for c in chunks), encoding="utf-8")
    LexicalIndex.build([c.chunk_id for c in chunks], [c.headed_text for c in chunks]).save(staging / "lexical")
    shutil.rmtree(files.version(version), ignore_errors=True)
    os.replace(staging, files.version(version))


def _remove_old_versions(files: IndexFiles, keep: int) -> None:
    for path in files.root.glob("v*"):
        if path.is_dir() and path.name[1:].isdigit() and int(path.name[1:]) != keep:
            shutil.rmtree(path, ignore_errors=True)


# -- opening -------------------------------------------------------------------------------------


def load_index(settings: Settings, embeddings: Embeddings, manifest: Manifest, client: Any | None = None) -> Index:
    """Open the version ``manifest`` names and check its parts agree; raises if anything is missing."""
    files = IndexFiles(settings.index_dir)
    chunks = read_chunks(files.chunks(manifest.version))
    lexical = LexicalIndex.load(files.lexical(manifest.version))
    client = client or chroma_client(settings)
    stores = vector_stores(client, settings, embeddings)
    if len(chunks) != manifest.chunk_count or lexical.chunk_ids != list(chunks):
        raise IndexUnavailable(f"its passages and BM25 index disagree with the manifest (version {manifest.version})")
    sample = list(chunks)[:: max(1, len(chunks) // 5)][:5]
    held = stores["text"].get(ids=sample, include=[])["ids"]  # type: ignore[attr-defined]
    if set(held) != set(sample):
        raise IndexUnavailable("the vector store is missing passages the manifest lists")
    return Index(manifest, chunks, lexical, stores, client)


def open_index(
    settings: Settings, embeddings: Embeddings, *, rebuild: bool = True, show_progress: bool = False
) -> Index:
    """Open the live index, rebuilding it first (and saying why) when it is missing, stale or broken."""
    if IndexFiles(settings.index_dir).pending.exists():
        log.warning("An earlier index build did not finish; the live index is intact, and the next build resumes it.")
    reasons = stale_reasons(settings, read_manifest(settings.index_dir))
    if reasons and not rebuild:
        raise IndexUnavailable(f"The index in {settings.index_dir} is out of date: {'; '.join(reasons)}.")
    if reasons:
        log.warning("Building the index (%s)…", "; ".join(reasons))
        report = build_index(settings, embeddings, show_progress=show_progress)
        log.warning(
            "Index v%d ready: %d passages (%d embedded, %d removed) in %.1f s.",
            report.version,
            report.chunk_count,
            report.added,
            report.removed,
            report.seconds,
        )
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None
    try:
        return load_index(settings, embeddings, manifest)
    except Exception as error:  # a damaged part, whatever the library raises
        if not rebuild:
            raise IndexUnavailable(f"The index in {settings.index_dir} is damaged ({error}).") from error
        if settings.chroma_url and _is_connection_error(error):
            raise IndexUnavailable(f"The Chroma server at {settings.chroma_url} is unreachable.") from error
        log.warning("The index in %s is damaged (%s); rebuilding it from scratch.", settings.index_dir, error)
        discard_index(settings)
        build_index(settings, embeddings, show_progress=show_progress)
        manifest = read_manifest(settings.index_dir)
        assert manifest is not None
        return load_index(settings, embeddings, manifest)


def discard_index(settings: Settings) -> None:
    """Delete the index (its vectors too, in embedded mode) so the next build starts from scratch."""
    files = IndexFiles(settings.index_dir)
    files.manifest.unlink(missing_ok=True)
    files.pending.unlink(missing_ok=True)
    _remove_old_versions(files, keep=-1)
    if not settings.chroma_url:
        _forget_chroma_clients()
        shutil.rmtree(files.chroma, ignore_errors=True)


def _is_connection_error(error: BaseException) -> bool:
    text = f"{error.__class__.__name__} {error}".lower()
    return any(word in text for word in ("connect", "refused", "unreachable", "timed out", "timeout"))
