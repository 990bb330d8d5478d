"""Open the index: check the live version against the corpus and model, build it when stale, repair it when damaged.

Opening compares the manifest with the corpus and model on disk: anything stale or damaged is reported and
rebuilt, so no question is answered from a stale index.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from bot.content.corpus import corpus_fingerprint
from bot.index.build import build_index
from bot.index.lexical import LexicalIndex
from bot.index.manifest import IndexFiles, Manifest, chunker_id
from bot.index.pointer import StorePointer, live_pointer
from bot.index.records import PassageTable
from bot.index.restore import restore_lexical
from bot.index.store import StoreConnection, VectorStore, connect, forget_chroma_clients, store_unreachable
from bot.index.views import View
from bot.settings import Settings

log = logging.getLogger("bot.index")


class IndexUnavailable(RuntimeError):
    """The index cannot be opened or built; the message says why in plain words."""


@dataclass
class Index:
    """An opened, verified version of the index: its passages, BM25 and one vector store per vector view."""

    manifest: Manifest
    passages: PassageTable
    lexical: LexicalIndex
    stores: dict[View, VectorStore]
    #: The store connection behind ``stores``, reused when a newer version is opened.
    connection: StoreConnection | None = None


def stale_reasons(settings: Settings, manifest: Manifest | None) -> list[str]:
    """Why the live index cannot serve the current corpus and model (empty when it can)."""
    if manifest is None:
        return ["there is no index yet"]
    reasons = []
    if manifest.embedding_model != settings.embedding_id:
        reasons.append(f"the embedding model changed ({manifest.embedding_model} → {settings.embedding_id})")
    if manifest.chunker != chunker_id(settings):
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


def load_index(settings: Settings, manifest: Manifest, *, previous: Index | None = None) -> Index:
    """Open the version ``manifest`` names and check its parts agree; raises if anything is missing.

    ``previous`` is the version served until now: its store connection and passage-record cache are reused.
    """
    folder = IndexFiles(settings.index_dir).lexical(manifest.version)
    if not folder.is_dir() and not settings.chroma_url:
        raise IndexUnavailable(f"the BM25 index of version {manifest.version} is missing")
    connection = (previous.connection if previous is not None else None) or connect(settings)
    stores = connection.stores(settings)
    lexical = _open_lexical(settings, manifest, stores[View.text], previous)
    ids = manifest.chunk_ids
    if len(lexical) != manifest.chunk_count or len(ids) != manifest.chunk_count:
        raise IndexUnavailable(f"its BM25 index disagrees with the manifest (version {manifest.version})")
    sample = ids[:: max(1, len(ids) // 5)][:5]
    if stores[View.text].held(sample) != set(sample):
        raise IndexUnavailable("the vector store is missing passages the manifest lists")
    cache = previous.passages.cache if previous is not None else None
    return Index(manifest, PassageTable(ids, stores[View.text], cache), lexical, stores, connection)


def _open_lexical(settings: Settings, manifest: Manifest, store: VectorStore, previous: Index | None) -> LexicalIndex:
    """The version's BM25 index; with a Chroma server, made from the store when this machine lacks it."""
    folder = IndexFiles(settings.index_dir).lexical(manifest.version)
    if folder.is_dir():
        lexical = LexicalIndex(folder)
        if not settings.chroma_url or len(lexical) == manifest.chunk_count:
            return lexical
        log.warning("The BM25 index of version %d disagrees with the manifest; making it again.", manifest.version)
        del lexical
        shutil.rmtree(folder, ignore_errors=True)
    base = (previous.manifest, previous.lexical.folder) if previous is not None else None
    return restore_lexical(folder, manifest, store, base=base)


def _raise_if_unreachable(settings: Settings, error: Exception) -> None:
    """``IndexUnavailable`` with a plain message when ``error`` means the Chroma server can't be reached."""
    if store_unreachable(settings, error):
        raise IndexUnavailable(f"The Chroma server at {settings.chroma_url} is unreachable.") from error


def open_index(
    settings: Settings, embeddings: Embeddings, *, rebuild: bool = True, show_progress: bool = False
) -> Index:
    """Open the live index, rebuilding it first (and saying why) when it is missing, stale or broken."""
    if IndexFiles(settings.index_dir).pending.exists():
        log.warning("An earlier index build did not finish; the live index is intact, and the next build resumes it.")
    try:
        pointer = live_pointer(settings)
        live = pointer.read()
    except Exception as error:  # the store's own errors, from reading the pointer
        _raise_if_unreachable(settings, error)
        raise
    reasons = stale_reasons(settings, live)
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
    manifest = pointer.read() if reasons else live
    assert manifest is not None
    try:
        return load_index(settings, manifest)
    except Exception as error:  # a damaged part, whatever the library raises
        _raise_if_unreachable(settings, error)
        if not rebuild:
            raise IndexUnavailable(f"The index in {settings.index_dir} is damaged ({error}).") from error
        log.warning("The index in %s is damaged (%s); rebuilding it from scratch.", settings.index_dir, error)
        discard_index(settings)
        build_index(settings, embeddings, show_progress=show_progress)
        manifest = pointer.read()
        assert manifest is not None
        return load_index(settings, manifest)


def discard_index(settings: Settings) -> None:
    """Delete the index (its vectors too, in embedded mode) so the next build starts from scratch."""
    files = IndexFiles(settings.index_dir)
    files.manifest.unlink(missing_ok=True)
    files.pending.unlink(missing_ok=True)
    if isinstance(pointer := live_pointer(settings), StorePointer):
        pointer.withdraw()  # so the next build starts from scratch too
    for path in files.lexical_folders():
        shutil.rmtree(path, ignore_errors=True)
    if not settings.chroma_url:
        forget_chroma_clients()
        shutil.rmtree(files.chroma, ignore_errors=True)
