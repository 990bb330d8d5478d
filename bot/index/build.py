"""Build the index: bring it in line with the corpus, embedding only what changed, then switch to it atomically.

Vectors are content-addressed (a chunk id hashes what the chunk says and where), so a build only chunks and
embeds the articles that changed, writes their passages beside the live ones, copies the BM25 index and
updates the copy, and then switches ``manifest.json`` atomically; only after that are passages no version
needs deleted. A reader never sees a half-built index, a killed build leaves the live one serving, and the
next build reuses whatever the killed one had already embedded.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from bot.content.chunking import chunk_document
from bot.content.corpus import CorpusError, article_paths, corpus_fingerprint, doc_id, load_document
from bot.content.documents import Chunk
from bot.index.lexical import LexicalIndex
from bot.index.manifest import (
    DocumentEntry,
    IndexFiles,
    Manifest,
    chunker_id,
    read_pending,
    write_pending,
)
from bot.index.pointer import LivePointer, live_pointer
from bot.index.records import SENTENCE_CHUNK_KEY, encode_passage, quotable_sentences, sentence_id, sentence_record
from bot.index.restore import restore_lexical
from bot.index.store import VectorStore, connect
from bot.index.views import View
from bot.settings import Settings

#: Texts embedded per step of a build. Sorted by length first, a step's model batches hold texts of about one
#: length (little padding); it is small enough that its vectors as Python lists stay well under 100 MB.
_EMBED_GROUP = 2048

#: A text to embed: its vector-store id, the text, and its metadata.
Row = tuple[str, str, Mapping[str, Any]]


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


@dataclass(frozen=True)
class _Plan:
    """What the next version holds, against the live one."""

    #: The next version's articles (in the manifest's order).
    documents: dict[str, DocumentEntry]
    #: Passages of changed articles that the live version lacks: to embed, or to reuse from a killed build.
    fresh: list[Chunk]
    #: The live version's passages, and the next version's.
    live: set[str]
    wanted: set[str]

    @property
    def unchanged(self) -> bool:
        """Whether the next version would hold exactly the live one's passages."""
        return not self.fresh and self.wanted == self.live


def build_index(settings: Settings, embeddings: Embeddings, *, show_progress: bool = False) -> BuildReport:
    """Bring the index in line with the corpus, embedding only what changed, then switch to it atomically."""
    with _build_lock(IndexFiles(settings.index_dir)):
        return _build(settings, embeddings, show_progress=show_progress)


@contextmanager
def _build_lock(files: IndexFiles) -> Iterator[None]:
    """One build at a time per index folder (a second one waits)."""
    files.root.mkdir(parents=True, exist_ok=True)
    with files.lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(settings: Settings, embeddings: Embeddings, *, show_progress: bool) -> BuildReport:
    started = time.perf_counter()
    files = IndexFiles(settings.index_dir)
    model = settings.embedding_id
    dim = len(embeddings.embed_query("dimension probe"))
    connection = connect(settings)
    pointer = live_pointer(settings, connection)
    previous = pointer.read()
    pending = read_pending(files, model, dim)
    from_scratch = _starts_from_scratch(settings, previous, dim, resuming=bool(pending))
    if from_scratch:
        connection.delete_stores(settings)
        files.pending.unlink(missing_ok=True)
        previous, pending = None, set()
    stores = connection.stores(settings)

    plan = _plan(settings, previous)
    if previous is not None and plan.unchanged:
        _delete_passages(stores, sorted(pending - plan.live))  # an abandoned build's leftovers
        files.pending.unlink(missing_ok=True)
        if settings.chroma_url:
            pointer.publish(previous)  # idempotent; publishes in the store a version built before it kept one
        return BuildReport(
            added=0,
            removed=0,
            kept=len(plan.live),
            chunk_count=len(plan.live),
            embedded_texts=0,
            seconds=time.perf_counter() - started,
            embedding_seconds=0.0,
            store_seconds=0.0,
            version=previous.version,
        )

    text_rows, sentence_rows = _still_to_embed(stores, plan.fresh, pending)
    write_pending(files, model, dim, pending | {c.chunk_id for c in plan.fresh})
    embedding_seconds, store_seconds = _embed(stores, text_rows, sentence_rows, embeddings, show_progress)

    stale = sorted((plan.live | pending) - plan.wanted)
    version = previous.version + 1 if previous else 1
    if previous is not None and settings.chroma_url and not files.lexical(previous.version).is_dir():
        restore_lexical(files.lexical(previous.version), previous, stores[View.text])  # built on another machine
    lexical_dir = _update_lexical(files, previous, version, remove=stale, add=plan.fresh)
    # A killed build's leftovers were never part of any version: they can go before the switch.
    _delete_passages(stores, [i for i in stale if i not in plan.live])
    manifest = Manifest(
        version=version,
        embedding_model=model,
        embedding_dim=dim,
        chunker=chunker_id(settings),
        documents=plan.documents,
        chunk_count=len(plan.wanted),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    _switch(pointer, manifest)
    _clean_up(files, stores, old=[i for i in stale if i in plan.live], lexical_dir=lexical_dir)
    return BuildReport(
        added=len(plan.fresh),
        removed=len(plan.live - plan.wanted),
        kept=len(plan.live & plan.wanted),
        chunk_count=len(plan.wanted),
        embedded_texts=len(text_rows) + len(sentence_rows),
        seconds=time.perf_counter() - started,
        embedding_seconds=embedding_seconds,
        store_seconds=store_seconds,
        version=version,
        rebuilt_from_scratch=from_scratch,
    )


def _starts_from_scratch(settings: Settings, previous: Manifest | None, dim: int, *, resuming: bool) -> bool:
    """Whether no stored vector can be kept.

    So it is when the live version was made with another model or chunker, or when there is none and no
    killed first build to resume.
    """
    if previous is None:
        return not resuming
    return (previous.embedding_model, previous.embedding_dim, previous.chunker) != (
        settings.embedding_id,
        dim,
        chunker_id(settings),
    )


def _plan(settings: Settings, previous: Manifest | None) -> _Plan:
    """Compare the corpus with the live version; only articles whose content hash changed are read and chunked."""
    fingerprint = corpus_fingerprint(settings.corpus_dir)
    indexed = previous.documents if previous else {}
    paths = {doc_id(p, settings.corpus_dir): p for p in article_paths(settings.corpus_dir)}
    changed = [d for d in paths if d not in indexed or indexed[d].sha256 != fingerprint[d]]
    chunks_of = {
        d: chunk_document(load_document(paths[d], settings.corpus_dir), settings.chunk_max_chars) for d in changed
    }
    documents = {d: indexed[d] for d in fingerprint if d in indexed}
    for d, chunks in chunks_of.items():
        documents[d] = DocumentEntry(sha256=fingerprint[d], chunk_ids=[c.chunk_id for c in chunks])
    live = {i for entry in indexed.values() for i in entry.chunk_ids}
    wanted = {i for entry in documents.values() for i in entry.chunk_ids}
    if not wanted:
        raise CorpusError(f"The corpus folder {settings.corpus_dir} has no Markdown (.md) articles.")
    fresh = [c for chunks in chunks_of.values() for c in chunks if c.chunk_id not in live]
    return _Plan(documents=documents, fresh=fresh, live=live, wanted=wanted)


def _still_to_embed(
    stores: Mapping[View, VectorStore], fresh: list[Chunk], pending: set[str]
) -> tuple[list[Row], list[Row]]:
    """The passages and sentences of ``fresh`` to embed: all but what a killed build already wrote."""
    resumed = [c.chunk_id for c in fresh if c.chunk_id in pending]
    have_text = stores[View.text].held(resumed)
    sentences = {sentence_id(c.chunk_id, at): (c, s) for c in fresh for at, s in quotable_sentences(c)}
    have_sentences = stores[View.sentences].held([sid for sid, (c, _) in sentences.items() if c.chunk_id in pending])
    text_rows: list[Row] = [(c.chunk_id, c.plain_text, encode_passage(c)) for c in fresh if c.chunk_id not in have_text]
    sentence_rows: list[Row] = [
        (sid, c.sentence_text(s), sentence_record(c.chunk_id))
        for sid, (c, s) in sentences.items()
        if sid not in have_sentences
    ]
    return text_rows, sentence_rows


def _embed(
    stores: Mapping[View, VectorStore],
    text_rows: list[Row],
    sentence_rows: list[Row],
    embeddings: Embeddings,
    show_progress: bool,
) -> tuple[float, float]:
    """Embed passages and sentences into their stores, with a progress bar; seconds in the model and the store."""
    from tqdm import tqdm  # only a build draws a progress bar

    total = len(text_rows) + len(sentence_rows)
    with tqdm(total=total, unit="text", desc="Embedding", disable=not show_progress or total == 0) as bar:
        text_model, text_store = _embed_into(stores[View.text], text_rows, embeddings, bar.update)
        sentence_model, sentence_store = _embed_into(stores[View.sentences], sentence_rows, embeddings, bar.update)
    return text_model + sentence_model, text_store + sentence_store


def _embed_into(
    store: VectorStore,
    rows: list[Row],
    embeddings: Embeddings,
    progress: Callable[[int], object],
) -> tuple[float, float]:
    """Embed ``rows`` (id, text, metadata) into ``store``; the seconds spent in the model and in the store.

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
        store.upsert([i for i, _, _ in group], vectors, texts, [meta for _, _, meta in group])
        model_seconds += embedded - started
        store_seconds += time.perf_counter() - embedded
        progress(len(group))
    return model_seconds, store_seconds


def _update_lexical(
    files: IndexFiles, previous: Manifest | None, version: int, *, remove: list[str], add: list[Chunk]
) -> Path:
    """The next version's BM25 folder: a copy of the live one's (or a new one), updated in place."""
    folder = files.lexical(version)
    if previous is not None and files.lexical(previous.version).is_dir():
        lexical = LexicalIndex.copy(files.lexical(previous.version), folder)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        lexical = LexicalIndex(folder)
    lexical.update(remove=remove, add=[(c.chunk_id, c.headed_text) for c in add])
    return folder


def _switch(pointer: LivePointer, manifest: Manifest) -> None:
    """Make ``manifest`` the live version: one rename (one upsert in the store), old version or new, never half."""
    pointer.publish(manifest)


def _clean_up(files: IndexFiles, stores: Mapping[View, VectorStore], *, old: list[str], lexical_dir: Path) -> None:
    """After the switch: the old version's passages and BM25 folders go (its readers simply stop finding them)."""
    _delete_passages(stores, old)
    files.pending.unlink(missing_ok=True)
    for path in files.lexical_folders():
        if path != lexical_dir:
            shutil.rmtree(path, ignore_errors=True)


def _delete_passages(stores: Mapping[View, VectorStore], chunk_ids: list[str]) -> None:
    """Remove passages and their sentences from the vector stores."""
    stores[View.text].delete(chunk_ids)
    stores[View.sentences].delete_where(SENTENCE_CHUNK_KEY, chunk_ids)
