"""The index version being served, and the switch to a newer one when a build publishes it.

A request takes the current ``Snapshot`` when it arrives and answers from it to the end; a newer version is
swapped in whole, so a request never mixes two versions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from threading import Lock

from bot.index import Index, load_index
from bot.index.pointer import LivePointer, live_pointer
from bot.index.store import store_unreachable
from bot.settings import Settings
from bot.stages.state import Snapshot

log = logging.getLogger(__name__)

#: How often a request may look for a newer version (a stat of the manifest file, or one small store read).
_CHECK_EVERY_SECONDS = 1.0


class IndexVersions:
    """Holds the served snapshot and replaces it when the pointer names a newer version (checked once a second).

    The pointer is ``manifest.json`` by default and the Chroma server's ``<collection>-manifest`` with one
    (``bot.index.pointer``): a build on any machine is picked up at the next check.
    """

    def __init__(
        self,
        settings: Settings,
        index: Index,
        snapshot_of: Callable[[Index], Snapshot],
        pointer: LivePointer | None = None,
    ) -> None:
        self.settings = settings
        self._snapshot_of = snapshot_of
        self._current = snapshot_of(index)
        self._pointer = pointer or live_pointer(settings, index.connection)
        self._stamp = self._read_stamp()
        self._next_check = 0.0
        self._swap_lock = Lock()

    @property
    def current(self) -> Snapshot:
        """The snapshot a request arriving now answers from."""
        return self._current

    def _read_stamp(self) -> object:
        try:
            return self._pointer.stamp()
        except Exception as error:  # the store's own errors; answering goes on from the version served
            if not store_unreachable(self.settings, error):
                raise
            return None

    def refresh(self, *, force: bool = False) -> bool:
        """Switch to a newer index version if a build has produced one; cheap, and throttled to once a second.

        Returns whether the served version changed. Requests in flight finish on the version they started with,
        and those arriving while a newer version is being opened are answered from the current one.
        """
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        self._next_check = now + _CHECK_EVERY_SECONDS
        stamp = self._read_stamp()
        if stamp is None or (stamp == self._stamp and not force):
            return False
        if not self._swap_lock.acquire(blocking=force):
            return False  # another request is opening it
        try:
            manifest = self._pointer.read()
            if manifest is None or manifest.version == self._current.version:
                self._stamp = stamp
                return False
            served = self._current.index
            index = load_index(self.settings, manifest, previous=served)
            self._current = self._snapshot_of(index)
            self._stamp = stamp
            log.info("Now serving index v%d.", manifest.version)
            return True
        finally:
            self._swap_lock.release()
