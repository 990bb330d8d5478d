"""A version's BM25 index rebuilt from the passages in the vector store, for a folder that lacks it.

With a Chroma server, a worker's ``BOT_INDEX_DIR`` is its own: the build that published a version wrote that
version's BM25 folder on its own machine only. Every passage's text and record are in the store, so a worker
makes the folder itself: from scratch (all passages), or, when it serves an older version, from a copy of
that version's folder and only the passages that changed. It is written beside the target and renamed into
place, so another process on the same machine never opens half of one.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bot.index.lexical import LexicalIndex
from bot.index.manifest import IndexFiles, Manifest
from bot.index.records import decode_passage
from bot.index.store import VectorStore, in_batches

log = logging.getLogger("bot.index")

#: Passage records read from the store per round trip.
_BATCH = 2000


class LexicalRestoreError(RuntimeError):
    """The store lacks passages the manifest lists, so their BM25 index cannot be made."""


def headed_texts(store: VectorStore, ids: Sequence[str]) -> Iterator[tuple[str, str]]:
    """``(chunk_id, text BM25 sees)`` of each of ``ids``, read from the store's passage records in batches."""
    for batch in in_batches(ids, _BATCH):
        records = store.records(batch)
        missing = [i for i in batch if i not in records]
        if missing:
            raise LexicalRestoreError(f"the vector store is missing {len(missing)} passages the manifest lists")
        for chunk_id in batch:
            yield chunk_id, decode_passage(chunk_id, records[chunk_id]).headed_text


def restore_lexical(
    folder: Path, manifest: Manifest, store: VectorStore, *, base: tuple[Manifest, Path] | None = None
) -> LexicalIndex:
    """Make ``manifest``'s BM25 index in ``folder`` from the store; ``base``: a version's folder to start from."""
    started = time.perf_counter()
    work = folder.with_name(f"{folder.name}.restoring-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(work, ignore_errors=True)
    if base is not None and base[1].is_dir():
        lexical, held = LexicalIndex.copy(base[1], work), set(base[0].chunk_ids)
    else:
        lexical, held = LexicalIndex(work), set()
    wanted = manifest.chunk_ids
    keep = set(wanted)
    added = [i for i in wanted if i not in held]
    try:
        lexical.update(remove=sorted(held - keep), add=headed_texts(store, added))
        if len(lexical) != manifest.chunk_count:
            raise LexicalRestoreError(f"its BM25 index came out with {len(lexical)} of {manifest.chunk_count} passages")
    except BaseException:
        del lexical
        shutil.rmtree(work, ignore_errors=True)
        raise
    del lexical
    try:
        os.rename(work, folder)
    except OSError:  # another process on this machine made it first
        shutil.rmtree(work, ignore_errors=True)
    _prune(IndexFiles(folder.parent), manifest.version)
    log.warning(
        "Made the BM25 index of version %d from the store: %d passages (%d read) in %.1f s.",
        manifest.version,
        manifest.chunk_count,
        len(added),
        time.perf_counter() - started,
    )
    return LexicalIndex(folder)


def _prune(files: IndexFiles, version: int) -> None:
    """Drop BM25 folders older than the version before ``version`` (what this machine may still serve)."""
    for path in files.lexical_folders():
        number = path.name.removeprefix("lexical-v")
        if number.isdigit() and int(number) < version - 1:
            shutil.rmtree(path, ignore_errors=True)
