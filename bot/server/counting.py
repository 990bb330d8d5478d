"""Where the rate limits and site caps are counted: this process's memory, or a Redis server every worker shares.

Without ``BOT_REDIS_URL`` each worker counts in its own memory (``limits``' ``MemoryStorage``). With it, every
worker of every instance counts in the one Redis server (``limits``' ``RedisStorage``), so a client gets its
limit once across all of them. When Redis can't be reached the server keeps answering and counts in its own
memory again (``degraded``: per worker, as without Redis), says so in ``/api/health`` and the metrics, and
tries Redis again at most every ``recheck_seconds`` until it answers, then counts there again by itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from threading import Lock

from limits.storage import MemoryStorage, RedisStorage, Storage
from pydantic import SecretStr

from bot.server import metrics
from bot.settings import server_address

log = logging.getLogger("bot.server.counting")

#: How long Redis is left alone after it failed, before a request tries it again.
RECHECK_SECONDS = 5.0
#: A Redis call that takes longer fails (seconds): a request waits at most this long for an unreachable one.
_REDIS_TIMEOUT = 0.5


class MemoryCounts(MemoryStorage):
    """``limits``' ``MemoryStorage``, dropping expired counts as it counts instead of from a timer thread.

    Its own expiry runs on a ``threading.Timer`` that each count re-arms 10 ms ahead: under load a new thread
    every 10 ms. Here the same sweep runs in the counting thread, at most every ``sweep_seconds``; counts are
    unchanged (an expired window is also dropped when it is next read).
    """

    def __init__(self, *, sweep_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.timer.cancel()  # the one ``__init__`` started
        self._sweep_seconds = sweep_seconds
        self._clock = clock
        self._next_sweep = clock() + sweep_seconds

    def _MemoryStorage__schedule_expiry(self) -> None:  # what each count calls (the timer's re-arming)
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_seconds
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def limits_uri(url: SecretStr) -> str:
    """``BOT_REDIS_URL`` in the form ``limits`` takes (a socket's ``unix://`` is its ``redis+unix://``)."""
    text = url.get_secret_value()
    return "redis+unix://" + text.removeprefix("unix://") if text.startswith("unix://") else text


class Counters:
    """The storage to count in now: Redis when configured and answering, else memory."""

    def __init__(self, redis_url: SecretStr | None = None, *, recheck_seconds: float = RECHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.memory = MemoryCounts()
        self._address = server_address(redis_url) if redis_url is not None else None
        self._redis: RedisStorage | None = None
        if redis_url is not None:
            self._redis = RedisStorage(limits_uri(redis_url), wrap_exceptions=True, socket_timeout=_REDIS_TIMEOUT,
                                       socket_connect_timeout=_REDIS_TIMEOUT)  # fmt: skip
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._lock = Lock()
        self._degraded = False
        self._retry_at = 0.0
        metrics.LIMITS_DEGRADED.set(0)

    @property
    def state(self) -> str:
        """``memory`` (no Redis configured), ``redis``, or ``degraded`` (Redis unreachable: counting in memory)."""
        if self._redis is None:
            return "memory"
        return "degraded" if self._degraded else "redis"

    def checked_state(self) -> str:
        """``state`` after asking Redis (for ``/api/health``): a ping if it was answering, else ``storage``'s retry."""
        if self._redis is not None and not self._degraded and not self._redis.check():
            self.failed(ConnectionError("no reply to a ping"))
        self.storage()
        return self.state

    def storage(self) -> Storage:
        """Where to count the next request (tries Redis again once ``recheck_seconds`` have passed)."""
        if self._redis is None:
            return self.memory
        with self._lock:
            if not self._degraded:
                return self._redis
            if self._clock() < self._retry_at:
                return self.memory
            self._retry_at = self._clock() + self.recheck_seconds  # one request at a time tries it
        if not self._redis.check():
            return self.memory
        with self._lock:
            self._degraded = False
        metrics.LIMITS_DEGRADED.set(0)
        log.warning("Redis at %s answers again; counting the limits there.", self._address)
        return self._redis

    def failed(self, error: Exception) -> None:
        """A call to Redis failed: count in memory until it answers again."""
        with self._lock:
            first = not self._degraded
            self._degraded = True
            self._retry_at = self._clock() + self.recheck_seconds
        if first:
            metrics.FAILURES.labels("limits_redis").inc()
            metrics.LIMITS_DEGRADED.set(1)
            cause = error.__cause__ or error
            log.error("Redis at %s is unreachable (%s); counting the limits in this worker's memory until it is "
                      "back.", self._address, cause.__class__.__name__)  # fmt: skip
