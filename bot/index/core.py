"""Build, check and open the index: Chroma vectors (passages and quotable sentences), BM25, and a manifest.

Layout under ``BOT_INDEX_DIR``::

    manifest.json      the live version: what it was built from (model, chunker, each article's hash and passages)
    lexical-v<N>/      that version's BM25 index (tantivy)
    chroma/            the vectors and passage records (embedded mode; with BOT_CHROMA_URL, a Chroma server)
    pending.json       passages written by a build that has not switched yet

Vectors are content-addressed (a chunk id hashes what the chunk says and where), so a build only chunks
and embeds the articles that changed, writes their passages beside the live ones, copies the BM25 index
and updates the copy, and then switches ``manifest.json`` atomically; only after that are passages no
version needs deleted. A reader never sees a half-built index, a killed build leaves the live one
serving, and the next build reuses whatever the killed one had already embedded. Opening compares the
manifest with the corpus and model on disk: anything stale or damaged is reported and rebuilt.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ValidationError

from bot.cache import CountingLRU
from bot.content.chunking import CHUNKER_VERSION, chunk_document
from bot.content.corpus import article_paths, corpus_fingerprint, doc_id, load_document
from bot.index.lexical import LexicalIndex
from bot.settings import Settings
from bot.content.documents import Chunk, Sentence

log = logging.getLogger("bot.index")

#: The vector stores of an index: each passage, and each quotable sentence on its own.
VIEWS = ("text", "sentences")
#: Texts embedded per step of a build. Sorted by length first, a step's model batches hold texts of about one
#: length (little padding); it is small enough that its vectors as Python lists stay well under 100 MB.
_EMBED_GROUP = 2048
_COSINE: Any = {"hnsw": {"space": "cosine"}}
_STORE_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


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
        """Passages written to the store by a build that has not switched yet."""
        return self.root / "pending.json"

    def lexical(self, version: int) -> Path:
        """One version's BM25 index."""
        return self.root / f"lexical-v{version}"


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    added: int
    removed: int
    kept: int
    chunk_count: int
    embedded_texts: int
    seconds: float
    #: Time in the embedding model, and in the vector store writing (and HNSW-indexing) its vectors.
    embedding_seconds: float
    store_seconds: float
    version: int
    rebuilt_from_scratch: bool = False


# -- passage records -----------------------------------------------------------------------------


def _record(chunk: Chunk) -> dict[str, Any]:
    """A chunk as vector-store metadata: everything needed to cite it, stored once, with its vector."""
    return {
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "section": json.dumps(chunk.section, ensure_ascii=False),
        "text": chunk.text,
        "start": chunk.start,
        "end": chunk.end,
        "context": chunk.context,
        "sentences": json.dumps([list(s) for s in chunk.sentences]),
    }


def _chunk(chunk_id: str, record: dict[str, Any]) -> Chunk:
    return Chunk(
        chunk_id=chunk_id,
        doc_id=record["doc_id"],
        title=record["title"],
        section=tuple(json.loads(record["section"])),
        text=record["text"],
        start=record["start"],
        end=record["end"],
        context=record["context"],
        sentences=tuple(Sentence(*values) for values in json.loads(record["sentences"])),
    )


class ChunkTable(Mapping[str, Chunk]):
    """The live version's passages: ids from the manifest, records read from the vector store when needed."""

    def __init__(self, ids: list[str], collection: Any, cache: CountingLRU[Chunk] | None = None) -> None:
        self._ids = ids
        self._live = frozenset(ids)
        self._collection = collection
        #: Passage records by id; content-addressed, so one cache serves every version.
        self.cache: CountingLRU[Chunk] = cache or CountingLRU(4096)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._live

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, chunk_id: str) -> Chunk:
        if chunk_id not in self._live:
            raise KeyError(chunk_id)
        return self.fetch([chunk_id])[chunk_id]

    def fetch(self, ids: Iterable[str]) -> dict[str, Chunk]:
        """The records of ``ids`` that belong to this version, in one store round trip for the uncached ones."""
        return self.cache.get_or_fetch_many((i for i in ids if i in self._live), self._read)

    def _read(self, ids: list[str]) -> dict[str, Chunk]:
        records: dict[str, Chunk] = {}
        for batch in _in_batches(ids):
            found = self._collection.get(ids=batch, include=["metadatas"])
            records.update(
                (chunk_id, _chunk(chunk_id, record))
                for chunk_id, record in zip(found["ids"], found["metadatas"], strict=True)
            )
        return records

    def values(self) -> list[Chunk]:  # type: ignore[override]
        """Every passage (reads the whole version: for tests and tools, not for answering)."""
        found = self.fetch(self._ids)
        return [found[i] for i in self._ids if i in found]


@dataclass
class Index:
    """An opened, verified version of the index: its passages, BM25 and one Chroma collection per view."""

    manifest: Manifest
    chunks: ChunkTable
    lexical: LexicalIndex
    collections: dict[str, Any]
    #: The Chroma client behind the collections, reused when a newer version is opened.
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
        client = chromadb.HttpClient(
            host=url.hostname or "127.0.0.1", port=url.port or 8000, ssl=url.scheme == "https", settings=chroma_settings
        )
        # Chroma's client waits forever by default: a hung server would hold every answering thread.
        session = getattr(getattr(client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.timeout = _STORE_TIMEOUT
        return client
    path = IndexFiles(settings.index_dir).chroma
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def store_description(settings: Settings) -> str:
    """Where the vectors live, for logs and health checks."""
    return f"chroma server {settings.chroma_url}" if settings.chroma_url else "embedded chroma (one process)"


def store_reachable(settings: Settings, timeout: float = 1.0) -> bool:
    """Whether the Chroma server answers its heartbeat within ``timeout`` seconds (embedded: always)."""
    if not settings.chroma_url:
        return True
    try:
        response = httpx.get(f"{settings.chroma_url.rstrip('/')}/api/v2/heartbeat", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def store_unreachable(settings: Settings, error: BaseException) -> bool:
    """Whether ``error``, or what caused it, means the Chroma server could not be reached (server mode only)."""
    if not settings.chroma_url:
        return False
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.TransportError) or _is_connection_error(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _forget_chroma_clients() -> None:
    # Chroma caches one system per path; after deleting the folder it must not be reused.
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _collections(client: Any, settings: Settings) -> dict[str, Any]:
    return {
        view: client.get_or_create_collection(name, embedding_function=None, configuration=_COSINE)
        for view, name in _collection_names(settings).items()
    }


def _delete_collections(client: Any, settings: Settings) -> None:
    from chromadb.errors import NotFoundError

    for name in _collection_names(settings).values():
        with suppress(NotFoundError, ValueError):  # nothing to delete
            client.delete_collection(name)


# -- small helpers -------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(index_dir: Path) -> Manifest | None:
    """The live manifest, or ``None`` when it is missing or unreadable."""
    try:
        return Manifest.model_validate_json(IndexFiles(index_dir).manifest.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def sentence_id(chunk_id: str, position: int) -> str:
    """Vector-store id of the ``position``-th sentence of the chunk ``chunk_id``."""
    return f"{chunk_id}/{position}"


def chunk_of_sentence(sid: str) -> str:
    """The chunk id a sentence's vector-store id belongs to (the inverse of :func:`sentence_id`)."""
    return sid.rpartition("/")[0]


def quotable_sentences(chunk: Chunk) -> Iterable[tuple[int, Sentence]]:
    """The sentences of ``chunk`` an answer may quote, with their positions (see :func:`sentence_id`)."""
    for position, sentence in enumerate(chunk.sentences):
        if sentence.quotable:
            yield position, sentence


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


def _chunker_id(settings: Settings) -> str:
    return f"{CHUNKER_VERSION}/{settings.chunk_max_chars}"


def _in_batches(ids: list[str], size: int = 5000) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# -- checking ------------------------------------------------------------------------------------


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


def build_index(settings: Settings, embeddings: Embeddings, *, show_progress: bool = False) -> BuildReport:
    """Bring the index in line with the corpus, embedding only what changed, then switch to it atomically."""
    with _build_lock(settings.index_dir):
        return _build(settings, embeddings, show_progress=show_progress)


def _build(settings: Settings, embeddings: Embeddings, *, show_progress: bool) -> BuildReport:
    started = time.perf_counter()
    files = IndexFiles(settings.index_dir)
    model = settings.embedding_model
    dim = len(embeddings.embed_query("dimension probe"))
    previous = read_manifest(settings.index_dir)
    pending = _read_pending(files, model, dim)
    compatible = previous is not None and (previous.embedding_model, previous.embedding_dim, previous.chunker) == (
        model,
        dim,
        _chunker_id(settings),
    )
    from_scratch = not compatible and not (previous is None and pending)
    client = chroma_client(settings)
    if from_scratch:
        _delete_collections(client, settings)
        files.pending.unlink(missing_ok=True)
        previous, pending = None, set()
    collections = _collections(client, settings)

    # Only articles whose content hash changed are read, chunked and embedded.
    fingerprint = corpus_fingerprint(settings.corpus_dir)
    indexed = previous.documents if previous else {}
    paths = {doc_id(p, settings.corpus_dir): p for p in article_paths(settings.corpus_dir)}
    changed = [d for d in paths if d not in indexed or indexed[d].sha256 != fingerprint[d]]
    chunks_of = {
        d: chunk_document(load_document(paths[d], settings.corpus_dir), settings.chunk_max_chars) for d in changed
    }
    new_chunks = [c for chunks in chunks_of.values() for c in chunks]
    documents = {d: indexed[d] for d in fingerprint if d in indexed}
    for d, chunks in chunks_of.items():
        documents[d] = DocumentEntry(sha256=fingerprint[d], chunk_ids=[c.chunk_id for c in chunks])
    live = {i for entry in indexed.values() for i in entry.chunk_ids}
    wanted = {i for entry in documents.values() for i in entry.chunk_ids}
    if not wanted:
        from bot.content.corpus import CorpusError

        raise CorpusError(f"The corpus folder {settings.corpus_dir} has no Markdown (.md) articles.")
    fresh = [c for c in new_chunks if c.chunk_id not in live]
    if previous is not None and not fresh and wanted == live:
        _delete_vectors(collections, sorted(pending - live))  # an abandoned build's leftovers
        files.pending.unlink(missing_ok=True)
        return BuildReport(
            added=0,
            removed=0,
            kept=len(live),
            chunk_count=len(live),
            embedded_texts=0,
            seconds=time.perf_counter() - started,
            embedding_seconds=0.0,
            store_seconds=0.0,
            version=previous.version,
        )

    # A killed build may already have written some of these: reuse them rather than embed again.
    resumed = [c.chunk_id for c in fresh if c.chunk_id in pending]
    have_text = _existing(collections["text"], resumed)
    sentences = {sentence_id(c.chunk_id, at): (c, s) for c in fresh for at, s in quotable_sentences(c)}
    have_sentences = _existing(
        collections["sentences"], [sid for sid, (c, _) in sentences.items() if c.chunk_id in pending]
    )
    text_todo = [c for c in fresh if c.chunk_id not in have_text]
    sentence_rows = [
        (sid, c.sentence_text(s), {"chunk_id": c.chunk_id})
        for sid, (c, s) in sentences.items()
        if sid not in have_sentences
    ]
    _write_pending(files, model, dim, pending | {c.chunk_id for c in fresh})

    from tqdm import tqdm

    total = len(text_todo) + len(sentence_rows)
    with tqdm(total=total, unit="text", desc="Embedding", disable=not show_progress or total == 0) as bar:
        text_rows = [(c.chunk_id, c.plain_text, _record(c)) for c in text_todo]
        text_model, text_store = _embed_into(collections["text"], text_rows, embeddings, bar.update)
        sentence_model, sentence_store = _embed_into(collections["sentences"], sentence_rows, embeddings, bar.update)
    embedding_seconds, store_seconds = text_model + sentence_model, text_store + sentence_store

    stale = sorted((live | pending) - wanted)
    version = previous.version + 1 if previous else 1
    lexical_dir = files.lexical(version)
    if previous is not None and files.lexical(previous.version).is_dir():
        lexical = LexicalIndex.copy(files.lexical(previous.version), lexical_dir)
    else:
        shutil.rmtree(lexical_dir, ignore_errors=True)
        lexical = LexicalIndex(lexical_dir)
    lexical.update(remove=stale, add=[(c.chunk_id, c.headed_text) for c in fresh])

    # A killed build's leftovers were never part of any version: they can go before the switch.
    _delete_vectors(collections, [i for i in stale if i not in live])
    manifest = Manifest(
        version=version,
        embedding_model=model,
        embedding_dim=dim,
        chunker=_chunker_id(settings),
        documents=documents,
        chunk_count=len(wanted),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    _write_atomically(files.manifest, manifest.model_dump_json())  # the switch

    # Only now may passages of the old version go: its readers simply stop finding them.
    _delete_vectors(collections, [i for i in stale if i in live])
    files.pending.unlink(missing_ok=True)
    for path in files.root.glob("lexical-v*"):
        if path != lexical_dir:
            shutil.rmtree(path, ignore_errors=True)
    return BuildReport(
        added=len(fresh),
        removed=len(live - wanted),
        kept=len(live & wanted),
        chunk_count=len(wanted),
        embedded_texts=total,
        seconds=time.perf_counter() - started,
        embedding_seconds=embedding_seconds,
        store_seconds=store_seconds,
        version=version,
        rebuilt_from_scratch=from_scratch,
    )


def _embed_into(
    collection: Any,
    rows: list[tuple[str, str, dict[str, Any]]],
    embeddings: Embeddings,
    progress: Callable[[int], None],
) -> tuple[float, float]:
    """Embed ``rows`` (id, text, metadata) into ``collection``; the seconds spent in the model and in the store.

    Texts go to the model longest first, as sentence-transformers orders one big encode: batches of texts of
    one length waste nothing on padding (batches in corpus order ran at 73 % of the bare encode rate). Each
    group is written before the next is embedded rather than beside it: the store's HNSW inserts use both
    cores too, and running the two at once made the model's threads wait on each other.
    """
    ordered = sorted(rows, key=lambda row: -len(row[1]))
    model_seconds = store_seconds = 0.0
    for start in range(0, len(ordered), _EMBED_GROUP):
        group = ordered[start : start + _EMBED_GROUP]
        texts = [text for _, text, _ in group]
        started = time.perf_counter()
        vectors = embeddings.embed_documents(texts)
        embedded = time.perf_counter()
        collection.add(
            ids=[i for i, _, _ in group],
            embeddings=vectors,
            documents=texts,
            metadatas=[meta for _, _, meta in group],
        )
        model_seconds += embedded - started
        store_seconds += time.perf_counter() - embedded
        progress(len(group))
    return model_seconds, store_seconds


def _existing(collection: Any, ids: list[str]) -> set[str]:
    """Which of ``ids`` the collection already holds."""
    return {found for batch in _in_batches(ids) for found in collection.get(ids=batch, include=[])["ids"]}


def _delete_vectors(collections: dict[str, Any], chunk_ids: list[str]) -> None:
    for batch in _in_batches(chunk_ids, 500):
        collections["text"].delete(ids=batch)
        collections["sentences"].delete(where={"chunk_id": {"$in": batch}})


def _read_pending(files: IndexFiles, model: str, dim: int) -> set[str]:
    """Passages an unfinished build wrote with this same model (empty if none, or another model's)."""
    try:
        data = json.loads(files.pending.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if data.get("embedding_model") != model or data.get("embedding_dim") != dim:
        return set()
    return set(data.get("chunk_ids", []))


def _write_pending(files: IndexFiles, model: str, dim: int, chunk_ids: set[str]) -> None:
    if chunk_ids:
        record = {"embedding_model": model, "embedding_dim": dim, "chunk_ids": sorted(chunk_ids)}
        _write_atomically(files.pending, json.dumps(record))


# -- opening -------------------------------------------------------------------------------------


def load_index(
    settings: Settings,
    manifest: Manifest,
    client: Any | None = None,
    cache: CountingLRU[Chunk] | None = None,
) -> Index:
    """Open the version ``manifest`` names and check its parts agree; raises if anything is missing."""
    folder = IndexFiles(settings.index_dir).lexical(manifest.version)
    if not folder.is_dir():
        raise IndexUnavailable(f"the BM25 index of version {manifest.version} is missing")
    lexical = LexicalIndex(folder)
    client = client or chroma_client(settings)
    collections = _collections(client, settings)
    ids = [i for entry in manifest.documents.values() for i in entry.chunk_ids]
    if len(lexical) != manifest.chunk_count or len(ids) != manifest.chunk_count:
        raise IndexUnavailable(f"its BM25 index disagrees with the manifest (version {manifest.version})")
    sample = ids[:: max(1, len(ids) // 5)][:5]
    held = collections["text"].get(ids=sample, include=[])["ids"]
    if set(held) != set(sample):
        raise IndexUnavailable("the vector store is missing passages the manifest lists")
    return Index(manifest, ChunkTable(ids, collections["text"], cache), lexical, collections, client)


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
            "Index v%d ready: %d passages (%d new, %d removed) in %.1f s.",
            report.version,
            report.chunk_count,
            report.added,
            report.removed,
            report.seconds,
        )
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None
    try:
        return load_index(settings, manifest)
    except Exception as error:  # a damaged part, whatever the library raises
        if store_unreachable(settings, error):
            raise IndexUnavailable(f"The Chroma server at {settings.chroma_url} is unreachable.") from error
        if not rebuild:
            raise IndexUnavailable(f"The index in {settings.index_dir} is damaged ({error}).") from error
        log.warning("The index in %s is damaged (%s); rebuilding it from scratch.", settings.index_dir, error)
        discard_index(settings)
        build_index(settings, embeddings, show_progress=show_progress)
        manifest = read_manifest(settings.index_dir)
        assert manifest is not None
        return load_index(settings, manifest)


def discard_index(settings: Settings) -> None:
    """Delete the index (its vectors too, in embedded mode) so the next build starts from scratch."""
    files = IndexFiles(settings.index_dir)
    files.manifest.unlink(missing_ok=True)
    files.pending.unlink(missing_ok=True)
    for path in files.root.glob("lexical-v*"):
        shutil.rmtree(path, ignore_errors=True)
    if not settings.chroma_url:
        _forget_chroma_clients()
        shutil.rmtree(files.chroma, ignore_errors=True)


def _is_connection_error(error: BaseException) -> bool:
    text = f"{error.__class__.__name__} {error}".lower()
    return any(word in text for word in ("connect", "refused", "unreachable", "timed out", "timeout"))
