"""Per-client rate limits and a daily cap per embedding site, kept in memory with the ``limits`` library.

Questions and ratings have separate per-client allowances of ``BOT_RATE_LIMIT`` each (``off``: none). A
question from an embedding site (an allowed ``Origin``) also counts against that site's daily cap
(``BOT_DAILY_CAP_PER_ORIGIN``), and one client may use at most a tenth of a site's cap: an ``Origin`` header
is easy to forge, so one client can't spend every visitor's questions. A question without an ``Origin`` (an
API client, the bot's own page) counts against the client's allowance only: it comes from no embedding site.
A request is counted only if every rule admits it, so a refused one uses up nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerDay, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

from bot import policy

#: The share of a site's daily cap one client may use.
SITE_SHARE_PER_CLIENT = 0.1


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
        if self.scope == "site_share":
            return policy.SITE_SHARE_REACHED
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
        sliding, fixed = SlidingWindowCounterRateLimiter(storage), FixedWindowRateLimiter(storage)
        items = [] if per_client == "off" else parse_many(per_client)
        self._client_rules = {kind: [_Rule(kind, item, sliding) for item in items] for kind in ("client", "rating")}
        self._site_rules = []
        if daily_cap_per_origin:
            share = max(1, math.floor(daily_cap_per_origin * SITE_SHARE_PER_CLIENT))
            self._site_rules = [_Rule("origin", RateLimitItemPerDay(daily_cap_per_origin), fixed),
                                _Rule("site_share", RateLimitItemPerDay(share), fixed)]  # fmt: skip

    def hit(self, client: str, origin: str | None = None, *, rating: bool = False) -> None:
        """Count a question (or with ``rating``, a rating) from ``client``, embedded on ``origin`` if any.

        Raises ``RateLimited`` (and counts nothing) when a rule is over its limit.
        """
        rules: list[tuple[_Rule, tuple[str, ...]]] = [
            (rule, (client,)) for rule in self._client_rules["rating" if rating else "client"]
        ]
        if origin and not rating:
            site, share = self._site_rules or (None, None)
            if site is not None and share is not None:
                rules += [(site, (origin,)), (share, (origin, client))]
        for rule, keys in rules:
            if not rule.limiter.test(rule.item, rule.scope, *keys):
                reset, _remaining = rule.limiter.get_window_stats(rule.item, rule.scope, *keys)
                raise RateLimited(rule.scope, max(1, math.ceil(reset - time.time())))
        for rule, keys in rules:
            rule.limiter.hit(rule.item, rule.scope, *keys)
