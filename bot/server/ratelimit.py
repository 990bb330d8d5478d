"""Per-client rate limits and a daily cap per embedding site, kept in memory with the ``limits`` library."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerDay, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

from bot import policy


class RateLimited(Exception):
    """A client or site asked more than its share; ``retry_after`` is in seconds."""

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(scope)
        self.scope = scope
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        """What to tell the person."""
        if self.scope == "origin":
            return policy.SITE_CAP_REACHED
        return policy.too_fast(self.retry_after)


@dataclass(frozen=True)
class _Rule:
    scope: str
    item: RateLimitItem
    limiter: FixedWindowRateLimiter | SlidingWindowCounterRateLimiter


class RateLimiter:
    """Checks, then counts, one request against every rule that applies to it."""

    def __init__(self, per_client: str, *, daily_cap_per_origin: int) -> None:
        storage = MemoryStorage()
        sliding = SlidingWindowCounterRateLimiter(storage)
        self._client_rules = [_Rule("client", item, sliding) for item in parse_many(per_client)]
        self._origin_rules = (
            [_Rule("origin", RateLimitItemPerDay(daily_cap_per_origin), FixedWindowRateLimiter(storage))]
            if daily_cap_per_origin
            else []
        )

    def hit(self, client: str, origin: str | None = None) -> None:
        """Count a request from ``client`` (embedded on ``origin``, if any), or raise ``RateLimited``."""
        rules = [(rule, client) for rule in self._client_rules]
        if origin:
            rules += [(rule, origin) for rule in self._origin_rules]
        for rule, key in rules:
            if not rule.limiter.test(rule.item, rule.scope, key):
                reset, _remaining = rule.limiter.get_window_stats(rule.item, rule.scope, key)
                raise RateLimited(rule.scope, max(1, math.ceil(reset - time.time())))
        for rule, key in rules:
            rule.limiter.hit(rule.item, rule.scope, key)
