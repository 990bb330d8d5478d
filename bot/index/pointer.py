"""The live-version pointer: which manifest is live, in ``manifest.json`` or, with a Chroma server, in the store.

With ``BOT_CHROMA_URL`` every worker and every ``bot index`` share the Chroma server but need not share a
folder: the pointer is published in the store too, in the collection ``<collection>-manifest``, as two
records with a one-number placeholder vector each:

    manifest-v<N>   metadata ``{"manifest": <the manifest's JSON>}``, written first
    live            metadata ``{"version": N, "built_at": ...}``: the switch, one small upsert

A reader checks ``live`` (a few bytes) to see whether anything changed and reads the manifest record only when
it did. A store that has no pointer yet (built before the pointer was kept there) falls back to the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from bot.index.manifest import IndexFiles, Manifest, read_manifest, write_atomically
from bot.index.store import StoreConnection, VectorStore, connect
from bot.settings import Settings

_LIVE = "live"
#: Chroma stores a vector with every record; the pointer's records carry this placeholder.
_PLACEHOLDER = [1.0]


def _manifest_id(version: int) -> str:
    return f"manifest-v{version}"


def pointer_collection(settings: Settings) -> str:
    """The Chroma collection holding the live-version pointer, e.g. ``knee-manifest``."""
    return f"{settings.collection}-manifest"


class LivePointer(Protocol):
    """Names the live version of the index; read by every worker, written by each build when it switches."""

    def stamp(self) -> object:
        """Something cheap to read that changes whenever the live version does."""
        ...

    def read(self) -> Manifest | None:
        """The live manifest, or ``None`` when there is none (or it is unreadable)."""
        ...

    def publish(self, manifest: Manifest) -> None:
        """Make ``manifest`` the live version, atomically: a reader sees the old one or the new one."""
        ...


@dataclass(frozen=True)
class FilePointer:
    """The pointer as ``manifest.json`` in ``BOT_INDEX_DIR`` (one machine, or a shared file system)."""

    files: IndexFiles

    def stamp(self) -> object:
        """The file's modification time (0 when there is none)."""
        try:
            return os.stat(self.files.manifest).st_mtime_ns
        except OSError:
            return 0

    def read(self) -> Manifest | None:
        """The manifest in the file."""
        return read_manifest(self.files.root)

    def publish(self, manifest: Manifest) -> None:
        """Replace the file in one rename."""
        self.files.root.mkdir(parents=True, exist_ok=True)
        write_atomically(self.files.manifest, manifest.model_dump_json())


@dataclass(frozen=True)
class StorePointer:
    """The pointer in the Chroma server's ``<collection>-manifest`` collection; the local file as a fallback."""

    store: VectorStore
    local: FilePointer

    def _live(self) -> tuple[int, str] | None:
        record = self.store.records([_LIVE]).get(_LIVE)
        if record is None:
            return None
        return int(record["version"]), str(record["built_at"])

    def stamp(self) -> object:
        """The live version and when it was built (the file's stamp while the store names none)."""
        live = self._live()
        return live if live is not None else ("file", self.local.stamp())

    def read(self) -> Manifest | None:
        """The manifest ``live`` names (the file's while the store names none)."""
        live = self._live()
        if live is None:
            return self.local.read()
        record = self.store.records([_manifest_id(live[0])]).get(_manifest_id(live[0]))
        try:
            return Manifest.model_validate_json(str(record["manifest"])) if record else None
        except (ValidationError, ValueError):
            return None

    def publish(self, manifest: Manifest) -> None:
        """Write the manifest record, then switch ``live`` to it, then drop older manifests; the file too."""
        self.local.publish(manifest)
        version = manifest.version
        self.store.upsert([_manifest_id(version)], [_PLACEHOLDER], [""], [{"manifest": manifest.model_dump_json()}])
        self.store.upsert([_LIVE], [_PLACEHOLDER], [""], [{"version": version, "built_at": manifest.built_at}])
        self.store.delete([_manifest_id(v) for v in range(max(1, version - 20), version - 1)])  # keeps the last

    def withdraw(self) -> None:
        """Forget the pointer (the next build starts from scratch, as after deleting ``manifest.json``)."""
        self.store.delete([_LIVE])


def live_pointer(settings: Settings, connection: StoreConnection | None = None) -> LivePointer:
    """Where the live version is named: the file alone by default, the Chroma server's store with one."""
    local = FilePointer(IndexFiles(settings.index_dir))
    if not settings.chroma_url:
        return local
    connection = connection or connect(settings)
    return StorePointer(connection.store(pointer_collection(settings)), local)
