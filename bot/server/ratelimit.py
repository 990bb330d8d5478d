"""Per-client rate limits and a daily cap per embedding site, counted with the ``limits`` library.

They are counted in memory, or in Redis shared by every worker with ``BOT_REDIS_URL`` (``bot.server.counting``:
while Redis is unreachable, in memory again, with the same rules).

Questions and ratings have separate per-client allowances of ``BOT_RATE_LIMIT`` each (``off``: none). A
question from an embedding site (an allowed ``Origin``) also counts against that site's daily cap
(``BOT_DAILY_CAP_PER_ORIGIN``), and one client may use at most a tenth of a site's cap: an ``Origin`` header
is easy to forge, so one client can't spend every visitor's questions. A question without an ``Origin`` (an
API client, the bot's own page) counts against the client's allowance only: it comes from no embedding site.
A request is counted only if every rule admits it, so a refused one uses up nothing (but for a request that
lost a race for a rule's last place to another worker's: the rules checked before it keep that count).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerDay, parse_many
from limits.errors import StorageError
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.strategies import RateLimiter as Strategy

from bot import policy
from bot.server.counting import Counters

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
    sliding: bool  # a sliding window (the clients' limits), else a fixed one (the sites' daily caps)


class RateLimiter:
    """Checks, then counts, one request against every rule that applies to it.

    ``counters``: where to count (default: this process's memory only).
    """

    def __init__(self, per_client: str, *, daily_cap_per_origin: int, counters: Counters | None = None) -> None:
        self.counters = counters or Counters()
        self._strategies: dict[int, tuple[Strategy, Strategy]] = {}
        items = [] if per_client == "off" else parse_many(per_client)
        self._client_rules = {kind: [_Rule(kind, item, True) for item in items] for kind in ("client", "rating")}
        self._site_rules = []
        if daily_cap_per_origin:
            share = max(1, math.floor(daily_cap_per_origin * SITE_SHARE_PER_CLIENT))
            self._site_rules = [_Rule("origin", RateLimitItemPerDay(daily_cap_per_origin), False),
                                _Rule("site_share", RateLimitItemPerDay(share), False)]  # fmt: skip

    def _strategy(self, storage: Storage, rule: _Rule) -> Strategy:
        pair = self._strategies.get(id(storage))
        if pair is None:  # one pair per storage (memory, Redis): a handful, made once each
            pair = self._strategies[id(storage)] = (SlidingWindowCounterRateLimiter(storage),
                                                    FixedWindowRateLimiter(storage))  # fmt: skip
        return pair[0] if rule.sliding else pair[1]

    def hit(self, client: str, origin: str | None = None, *, rating: bool = False) -> None:
        """Count a question (or with ``rating``, a rating) from ``client``, embedded on ``origin`` if any.

        Raises ``RateLimited`` (and counts nothing) when a rule is over its limit.
        """
        rules: list[tuple[_Rule, tuple[str, ...]]] = [
            (rule, (client,)) for rule in self._client_rules["rating" if rating else "client"]
        ]
        if origin and not rating and self._site_rules:
            site, share = self._site_rules
            rules += [(site, (origin,)), (share, (origin, client))]
        if not rules:
            return
        try:
            self._count(self.counters.storage(), rules)
        except StorageError as error:  # Redis is unreachable: count in memory (degraded) rather than refuse
            self.counters.failed(error)
            self._count(self.counters.storage(), rules)

    def _count(self, storage: Storage, rules: list[tuple[_Rule, tuple[str, ...]]]) -> None:
        for rule, keys in rules:
            if not self._strategy(storage, rule).test(rule.item, rule.scope, *keys):
                raise self._refused(storage, rule, keys)
        for rule, keys in rules:
            # Each hit is atomic (in Redis too): one that another worker's request beat to the last place since
            # the test is refused here, so a rule never admits more than its limit, whatever the concurrency.
            if not self._strategy(storage, rule).hit(rule.item, rule.scope, *keys):
                raise self._refused(storage, rule, keys)

    def _refused(self, storage: Storage, rule: _Rule, keys: tuple[str, ...]) -> RateLimited:
        reset, _remaining = self._strategy(storage, rule).get_window_stats(rule.item, rule.scope, *keys)
        return RateLimited(rule.scope, max(1, math.ceil(reset - time.time())))
