"""The index version being served, and the switch to a newer one when a build publishes it.

A request takes the current ``Snapshot`` when it arrives and answers from it to the end; a newer version is
swapped in whole, so a request never mixes two versions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from threading import Lock

from bot.index import Index, IndexFiles, load_index, read_manifest
from bot.settings import Settings
from bot.stages.state import Snapshot

log = logging.getLogger(__name__)

#: How often a request may look for a newer version (a stat of the manifest file).
_CHECK_EVERY_SECONDS = 1.0


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


class IndexVersions:
    """Holds the served snapshot and replaces it when the manifest names a newer version (checked once a second)."""

    def __init__(self, settings: Settings, index: Index, snapshot_of: Callable[[Index], Snapshot]) -> None:
        self.settings = settings
        self._snapshot_of = snapshot_of
        self._current = snapshot_of(index)
        self._manifest = IndexFiles(settings.index_dir).manifest
        self._manifest_mtime = _mtime(self._manifest)
        self._next_check = 0.0
        self._swap_lock = Lock()

    @property
    def current(self) -> Snapshot:
        """The snapshot a request arriving now answers from."""
        return self._current

    def refresh(self, *, force: bool = False) -> bool:
        """Switch to a newer index version if a build has produced one; cheap, and throttled to once a second.

        Returns whether the served version changed. Requests in flight finish on the version they started with.
        """
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        self._next_check = now + _CHECK_EVERY_SECONDS
        mtime = _mtime(self._manifest)
        if mtime == self._manifest_mtime and not force:
            return False
        with self._swap_lock:
            manifest = read_manifest(self.settings.index_dir)
            if manifest is None or manifest.version == self._current.version:
                self._manifest_mtime = mtime
                return False
            served = self._current.index
            index = load_index(self.settings, manifest, previous=served)
            self._current = self._snapshot_of(index)
            self._manifest_mtime = mtime
            log.info("Now serving index v%d.", manifest.version)
            return True
