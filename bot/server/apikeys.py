"""The OpenAI-compatible API's bearer tokens (``BOT_API_KEYS``): which configured key a request carries.

Keys are kept only as SHA-256 digests and compared in constant time, every one of them, so neither the
time taken nor a log line tells a guess how close it came. A key is known by a short id (the start of its
digest's hex), which is what the rate limits count and the logs may show.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

_BEARER = "bearer "


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeys:
    """The configured keys; none configured means none is asked for."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [_digest(key) for key in dict.fromkeys(keys)]

    @property
    def required(self) -> bool:
        """Whether requests must carry a key."""
        return bool(self._digests)

    def match(self, authorization: str | None) -> str | None:
        """The id of the key an ``Authorization: Bearer <key>`` header carries, or ``None`` for no known key."""
        if not authorization or authorization[: len(_BEARER)].lower() != _BEARER:
            return None
        offered = _digest(authorization[len(_BEARER) :].strip())
        found = None
        for digest in self._digests:  # no early exit: every key is compared
            if hmac.compare_digest(digest, offered):
                found = digest
        return found.hex()[:12] if found is not None else None
