"""The vector store: the protocol the index and the engine read and write through, and its Chroma implementation.

Two stores make an index, one per vector view (each passage, each quotable sentence), in one Chroma client:
embedded (``index/chroma/``, one process) or the Chroma server at ``BOT_CHROMA_URL``, shared by several.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, runtime_checkable
from urllib.parse import urlparse

import httpx
import numpy as np

from bot.index.manifest import IndexFiles
from bot.index.views import VECTOR_VIEWS, View
from bot.settings import Settings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.collection_configuration import CreateCollectionConfiguration
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import Where

T = TypeVar("T")

#: Longest wait on one call to a Chroma server (see :class:`Deadline`).
STORE_TIMEOUT = 30.0
#: Ids per read and per write of one Chroma call, and per delete (a delete by metadata names each value).
_READ_BATCH = 5000
_WRITE_BATCH = 2048
_DELETE_BATCH = 500
_COSINE: CreateCollectionConfiguration = {"hnsw": {"space": "cosine"}}


@runtime_checkable
class VectorStore(Protocol):
    """Vectors by id, each with a text and a metadata record; searched by cosine similarity."""

    def query(self, vector: Sequence[float], k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest ids with their cosine similarity (1 - distance), nearest first; nothing else."""
        ...

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The float32 vectors of those of ``ids`` the store holds."""
        ...

    def records(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The metadata of those of ``ids`` the store holds."""
        ...

    def held(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the store holds."""
        ...

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        """Write (or replace) each id's vector, text and metadata."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove ``ids`` (those not held are ignored)."""
        ...

    def delete_where(self, key: str, values: Sequence[str]) -> None:
        """Remove every entry whose metadata ``key`` is one of ``values``."""
        ...

    def count(self) -> int:
        """How many entries the store holds."""
        ...


def in_batches(ids: Sequence[str], size: int) -> Iterator[list[str]]:
    """``ids`` in consecutive lists of at most ``size`` (none for no ids: Chroma refuses an empty list)."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


# -- bounding the wait on a Chroma server ---------------------------------------------------------------


class StoreTimeout(TimeoutError):
    """The Chroma server did not answer in time: it is hung, or the network to it is."""


class _CallThreads:
    """A few daemon threads that run calls handed to them (what ``ThreadPoolExecutor`` does, minus the join).

    ``ThreadPoolExecutor`` joins its threads at exit, so one stuck on a hung server would keep the process
    from ever exiting; these are daemons. At most ``limit`` exist; calls beyond wait for a free one.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._started = 0

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((call, future))
        if self._idle.acquire(blocking=False):
            return future  # an idle thread takes it
        with self._lock:
            if self._started >= self._limit:
                return future
            self._started += 1
            name = f"chroma-call-{self._started}"
        threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            call, future = self._jobs.get()
            if future.set_running_or_notify_cancel():  # else its caller stopped waiting before it started
                try:
                    future.set_result(call())
                except BaseException as error:  # handed to the caller, who re-raises it
                    future.set_exception(error)
            del call, future
            self._idle.release()


#: Shared by every connection: a process that reconnects while the server is down does not gather threads.
_CALLS = _CallThreads(32)


@dataclass(frozen=True)
class Deadline:
    """Runs each Chroma server call on a helper thread and waits for it at most ``seconds``.

    Chroma 1.5 offers no supported way to bound its HTTP client's wait: ``chromadb/api/fastapi.py`` builds
    the client's httpx session with ``timeout=None``, and none of ``chromadb.config.Settings`` reaches it (its
    timeout settings are the server's own). Setting the session's timeout means reaching into private
    attributes that a Chroma release may rename without notice, so the wait is bounded here, around Chroma's
    public API, which covers creating the client too. A call that times out keeps its thread until the server
    answers or drops the connection; at most 32 such threads exist, and calls queued behind them time out too.
    """

    seconds: float = STORE_TIMEOUT

    def __call__(self, call: Callable[[], T]) -> T:
        """``call()``'s result or error; :class:`StoreTimeout` if it takes longer than ``seconds``."""
        future = _CALLS.submit(call)
        try:
            return future.result(timeout=self.seconds)
        except FutureTimeout:
            if future.done():  # it finished just now, or failed with a timeout of its own
                return future.result()
            future.cancel()
            raise StoreTimeout(f"The Chroma server did not answer within {self.seconds:g} s.") from None


# -- Chroma ---------------------------------------------------------------------------------------------


class ChromaStore:
    """A :class:`VectorStore` over one Chroma collection in cosine space."""

    def __init__(self, collection: Collection, *, deadline: Deadline | None = None) -> None:
        self.collection = collection
        self._deadline = deadline

    def _call(self, call: Callable[[], T]) -> T:
        return call() if self._deadline is None else self._deadline(call)

    def query(self, vector: Sequence[float], k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest ids with their cosine similarity, nearest first.

        Only ids and distances are asked for: fetching the documents and metadata too made each query 3× slower
        at 40k passages (1.3 → 3.6–4.4 ms), and the passages' text is in the index's passage table anyway.
        """
        found = self._call(
            partial(self.collection.query, query_embeddings=[vector], n_results=k, include=["distances"])
        )
        distances = found["distances"] or [[]]
        # The collections measure cosine distance; a score is the similarity, higher is better.
        return [(item, 1.0 - distance) for item, distance in zip(found["ids"][0], distances[0], strict=True)]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The float32 vectors of those of ``ids`` the collection holds."""
        found: dict[str, np.ndarray] = {}
        for batch in in_batches(ids, _READ_BATCH):
            got = self._call(partial(self.collection.get, ids=batch, include=["embeddings"]))
            vectors = got["embeddings"] if got["embeddings"] is not None else []
            found.update(
                (i, np.asarray(vector, dtype=np.float32)) for i, vector in zip(got["ids"], vectors, strict=True)
            )
        return found

    def records(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The metadata of those of ``ids`` the collection holds."""
        found: dict[str, dict[str, Any]] = {}
        for batch in in_batches(ids, _READ_BATCH):
            got = self._call(partial(self.collection.get, ids=batch, include=["metadatas"]))
            found.update((i, dict(meta or {})) for i, meta in zip(got["ids"], got["metadatas"] or [], strict=True))
        return found

    def held(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the collection holds."""
        return {
            found
            for batch in in_batches(ids, _READ_BATCH)
            for found in self._call(partial(self.collection.get, ids=batch, include=[]))["ids"]
        }

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        """Write (or replace) each id's vector, text and metadata."""
        for start in range(0, len(ids), _WRITE_BATCH):
            end = start + _WRITE_BATCH
            write = partial(
                self.collection.upsert,
                ids=list(ids[start:end]),
                embeddings=list(vectors[start:end]),
                documents=list(documents[start:end]),
                metadatas=list(metadatas[start:end]),
            )
            self._call(write)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove ``ids`` (those not held are ignored)."""
        for batch in in_batches(ids, _DELETE_BATCH):
            self._call(partial(self.collection.delete, ids=batch))

    def delete_where(self, key: str, values: Sequence[str]) -> None:
        """Remove every entry whose metadata ``key`` is one of ``values``."""
        for batch in in_batches(values, _DELETE_BATCH):
            where = cast("Where", {key: {"$in": batch}})
            self._call(partial(self.collection.delete, where=where))

    def count(self) -> int:
        """How many entries the collection holds."""
        return self._call(self.collection.count)


def collection_names(settings: Settings) -> dict[View, str]:
    """The Chroma collection of each vector view, e.g. ``knee-text``."""
    return {view: f"{settings.collection}-{view.value}" for view in VECTOR_VIEWS}


@dataclass(frozen=True)
class StoreConnection:
    """A Chroma client, embedded or over HTTP, and the deadline its calls run under (server mode)."""

    client: ClientAPI
    deadline: Deadline | None = None

    def _call(self, call: Callable[[], T]) -> T:
        return call() if self.deadline is None else self.deadline(call)

    def store(self, name: str) -> VectorStore:
        """The vector store of the collection ``name`` (created empty when missing)."""
        create = partial(self.client.get_or_create_collection, name, embedding_function=None, configuration=_COSINE)
        return ChromaStore(self._call(create), deadline=self.deadline)

    def stores(self, settings: Settings) -> dict[View, VectorStore]:
        """The vector store of each vector view (created empty when missing)."""
        return {view: self.store(name) for view, name in collection_names(settings).items()}

    def delete_stores(self, settings: Settings) -> None:
        """Delete every vector view's collection (those missing are skipped)."""
        from chromadb.errors import NotFoundError  # lazy, see connect(); loaded already with this client

        for name in collection_names(settings).values():
            with suppress(NotFoundError, ValueError):  # nothing to delete
                self._call(partial(self.client.delete_collection, name))


def import_client() -> None:
    """Import chromadb ahead of ``connect``: a server starting up does it beside loading the embedding model."""
    import chromadb  # noqa: F401


def connect(settings: Settings) -> StoreConnection:
    """A Chroma client: embedded (one process) by default, or the server at ``BOT_CHROMA_URL``."""
    # chromadb takes about a second to import: it is imported where a client is made, so that a process that
    # never opens the store (``bot --help``, settings, the health checks' heartbeat) does not pay for it.
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        deadline = Deadline(STORE_TIMEOUT)
        client = deadline(
            partial(
                chromadb.HttpClient,
                host=url.hostname or "127.0.0.1",
                port=url.port or 8000,
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        )
        return StoreConnection(client, deadline)
    path = IndexFiles(settings.index_dir).chroma
    path.mkdir(parents=True, exist_ok=True)
    return StoreConnection(chromadb.PersistentClient(path=str(path), settings=chroma_settings))


def forget_chroma_clients() -> None:
    """Drop Chroma's cached embedded systems (one per path): after its folder is deleted, none may be reused."""
    from chromadb.api.shared_system_client import SharedSystemClient  # lazy: see connect()

    SharedSystemClient.clear_system_cache()


# -- reachability -----------------------------------------------------------------------------------------

#: What means "the Chroma server cannot be reached", as Chroma 1.5's HTTP client raises it against a `chroma run`
#: that is stopped, killed or frozen: httpx's transport errors (``ConnectError`` for a refused connection,
#: ``ReadTimeout``/``RemoteProtocolError``/``ReadError`` for one that breaks off), which chromadb sometimes
#: wraps in a ``ValueError`` whose cause or context is one (creating a client does); the OS's connection and
#: timeout errors, should one escape unwrapped; and :class:`StoreTimeout` (a ``TimeoutError``), our own deadline.
_UNREACHABLE: tuple[type[BaseException], ...] = (httpx.TransportError, ConnectionError, TimeoutError)


def store_description(settings: Settings) -> str:
    """Where the vectors live, for logs and health checks."""
    return f"chroma server {settings.chroma_url}" if settings.chroma_url else "embedded chroma (one process)"


def store_reachable(settings: Settings, timeout: float = 1.0) -> bool:
    """Whether the Chroma server answers its heartbeat within ``timeout`` seconds (embedded: always)."""
    if not settings.chroma_url:
        return True
    try:
        response = httpx.get(f"{settings.chroma_url.rstrip('/')}/api/v2/heartbeat", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def store_unreachable(settings: Settings, error: BaseException) -> bool:
    """Whether ``error``, or what caused it, means the Chroma server could not be reached (server mode only)."""
    if not settings.chroma_url:
        return False
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNREACHABLE):
            return True
        current = current.__cause__ or current.__context__
    return False
