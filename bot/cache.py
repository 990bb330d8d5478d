"""A thread-safe LRU cache that counts its hits and computes a missing key once, however many ask at a time."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from threading import Event, Lock
from typing import Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CountingLRU(Generic[V]):
    """``get_or_compute`` with a bounded LRU behind it; ``hits``/``misses`` feed the metrics."""

    def __init__(self, maxsize: int) -> None:
        self._cache: LRUCache[Hashable, V] = LRUCache(maxsize=max(1, maxsize))
        self._enabled = maxsize > 0
        self._lock = Lock()
        #: Keys being computed, so that concurrent callers of one key wait for it instead of computing it again.
        self._pending: dict[Hashable, Event] = {}
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for ``key``; on a miss, computed once (outside the lock) while other callers wait."""
        if not self._enabled:
            with self._lock:
                self.misses += 1
            return compute()
        while True:
            with self._lock:
                if key in self._cache:
                    self.hits += 1
                    return self._cache[key]
                running = self._pending.get(key)
                if running is None:
                    self._pending[key] = done = Event()
                    break
            running.wait()  # then look again: it failed, or was evicted already, if it is not there
        try:
            value = compute()
            with self._lock:
                self.misses += 1
                self._cache[key] = value
            return value
        finally:
            with self._lock:
                del self._pending[key]
            done.set()

    def get_or_fetch_many(self, keys: Iterable[K], fetch: Callable[[list[K]], Mapping[K, V]]) -> dict[K, V]:
        """The values of ``keys``: cached ones, and the rest from one ``fetch`` call (stored; those it lacks left out).

        For records the store holds by content-addressed id, where one round trip for many beats one each.
        """
        wanted = list(dict.fromkeys(keys))
        found = {key: value for key in wanted if (value := self.peek(key)) is not None}
        if missing := [key for key in wanted if key not in found]:
            fetched = fetch(missing)
            for key, value in fetched.items():
                self.put(key, value)
            found.update(fetched)  # not read back: more keys than the cache holds would lose some
        return {key: found[key] for key in wanted if key in found}

    def peek(self, key: Hashable) -> V | None:
        """The cached value for ``key`` or ``None`` (not counted as a lookup)."""
        with self._lock:
            return self._cache.get(key)

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` for ``key``."""
        with self._lock:
            self._cache[key] = value

    def clear(self) -> None:
        """Forget everything (counters stay)."""
        with self._lock:
            self._cache.clear()

    @property
    def hit_rate(self) -> float:
        """Share of lookups served from the cache."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
