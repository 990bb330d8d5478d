"""What the web shell serves with: the engine, the feedback store, the limits, the answer slots, store health.

``Services`` is built by the app factory and filled in by ``lifespan``; routes reach it through the FastAPI
dependency ``get_services``, the chat page is handed it. ``AnswerEngine`` is the part of ``bot.engine.Engine``
the shell uses, so the shell can be tested with a fake (``tests/fakes.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

import anyio
from fastapi import Request

from bot.cache import CountingLRU
from bot.contract import Answer
from bot.feedback import FeedbackStore
from bot.index import store_reachable, store_unreachable
from bot.server import metrics
from bot.server.apikeys import ApiKeys
from bot.server.counting import Counters
from bot.server.errors import NotReady, StoreUnavailable
from bot.server.placeholder import PageSlot
from bot.server.ratelimit import RateLimiter
from bot.server.signing import AnswerSigner
from bot.server.usage import TokenCounter
from bot.settings import Settings

log = logging.getLogger("bot.server.services")

#: How long a store check (a Chroma server heartbeat) is trusted before /api/health asks again.
_STORE_CHECK_SECONDS = 1.0


class Manifest(Protocol):
    """What the shell reads of the served index version."""

    @property
    def version(self) -> int:
        """The index version answered from."""

    @property
    def chunk_count(self) -> int:
        """Passages in it."""


class IndexView(Protocol):
    """The served index, as far as the shell looks at it."""

    @property
    def manifest(self) -> Manifest:
        """Its manifest."""


class AnswerEngine(Protocol):
    """What the shell uses of ``bot.engine.Engine`` (and all a fake engine must have)."""

    @property
    def version(self) -> str:
        """Engine version and index build, e.g. ``0.1.0+index.3``."""

    @property
    def composer(self) -> str:
        """What writes the answers (``extractive`` when a configured chat model could not be loaded)."""

    @property
    def index(self) -> IndexView:
        """The index version served."""

    @property
    def caches(self) -> Mapping[str, CountingLRU[Any]]:
        """The engine's caches by name, counting their hits (for the metrics)."""

    def refresh(self) -> bool:
        """Switch to a newer index version if one was built (cheap, throttled)."""

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        """The answer to ``question`` in the context of ``history``."""

    def stream(self, question: str, history: Iterable[Any] | None = None) -> Iterator[str | Answer]:
        """The same answer: pieces of its text as they are ready, then the ``Answer``."""

    def reject(self, question: str, reason: str) -> Answer:
        """The ``invalid`` reply to a request that can't be read (``reason`` as in ``bot.policy.INVALID``)."""


class Loaded(NamedTuple):
    """What answering a request takes, once ``lifespan`` has loaded it."""

    engine: AnswerEngine
    store: FeedbackStore
    slots: anyio.CapacityLimiter


class Services:
    """The loaded engine and feedback store, the limits, the slots for answering at once, and store health."""

    def __init__(self, settings: Settings, engine: AnswerEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.store: FeedbackStore | None = None
        self.limiter = RateLimiter(settings.rate_limit, daily_cap_per_origin=settings.daily_cap_per_origin,
                                   counters=Counters(settings.redis_url))  # fmt: skip
        #: Questions answered at once (``BOT_WORKER_THREADS``); opened by ``lifespan``, in the serving event loop.
        self.slots: anyio.CapacityLimiter | None = None
        #: The chat page at ``/``, when this app serves one.
        self.page_slot: PageSlot | None = None
        #: Signs the answers' ids (``bot.server.signing``); loaded by ``lifespan``.
        self.signer: AnswerSigner | None = None
        self._store_ok = True
        self._store_checked_until = 0.0
        # -- the OpenAI-compatible API: its keys, and the tokenizer its usage counts with (read once, here)
        self.api_keys = ApiKeys(key.get_secret_value() for key in settings.api_keys)
        self.qa_keys = ApiKeys(key.get_secret_value() for key in settings.qa_keys)
        self.tokens = TokenCounter.for_model(settings.embedding_model)

    @property
    def ready(self) -> bool:
        """Whether the engine and the feedback store are loaded."""
        return self.engine is not None and self.store is not None

    @property
    def page(self) -> str:
        """The chat page's state for ``/api/health``: ``starting``, ``ready``, ``failed``, or ``off``."""
        return self.page_slot.status if self.page_slot is not None else "off"

    def loaded(self) -> Loaded:
        """The engine, store and answer slots, or ``StoreUnavailable`` / ``NotReady`` (whichever says why)."""
        if self.engine is None or self.store is None or self.slots is None:
            if self.settings.chroma_url and not self._store_ok:
                raise StoreUnavailable
            raise NotReady
        return Loaded(self.engine, self.store, self.slots)

    # -- store health ------------------------------------------------------------------------------

    def store_reachable(self) -> bool:
        """Whether the vector store answers (a Chroma server heartbeat, checked at most once a second)."""
        now = time.monotonic()
        if now >= self._store_checked_until:
            self._store_ok = store_reachable(self.settings)
            self._store_checked_until = now + _STORE_CHECK_SECONDS
        return self._store_ok

    def store_failed(self) -> None:
        """A request just failed to reach the store: report not ready until the next check succeeds."""
        self._store_ok = False
        self._store_checked_until = time.monotonic() + _STORE_CHECK_SECONDS

    def is_store_failure(self, error: BaseException) -> bool:
        """Whether ``error`` came from an unreachable store (and if so, remember that)."""
        if store_unreachable(self.settings, error):
            self.store_failed()
            metrics.FAILURES.labels("store_unavailable").inc()
            return True
        return False

    async def load_when_store_returns(self, load: Callable[[], AnswerEngine]) -> None:
        """Load the engine with ``load`` once the Chroma server answers again (it was unreachable at start-up)."""
        delay = 1.0
        while self.engine is None:
            await anyio.sleep(delay)
            delay = min(delay * 2, 10.0)
            if not await anyio.to_thread.run_sync(self.store_reachable):
                continue
            try:
                engine = await anyio.to_thread.run_sync(load)
            except Exception as error:
                log.warning("Still cannot open the index (%s); retrying in %.0f s.", error, delay)
                continue
            self.engine = engine
            metrics.set_index_version(engine.index.manifest.version)
            log.warning("The Chroma server at %s is back; answering from index v%d.", self.settings.chroma_url,
                        engine.index.manifest.version)  # fmt: skip


# The dependency is ``async`` because it doesn't block: FastAPI runs a plain ``def`` dependency in a worker
# thread, a thread hop per request for nothing.


async def get_services(request: Request) -> Services:
    """The app's services (a FastAPI dependency)."""
    found: Services = request.app.state.services
    return found
