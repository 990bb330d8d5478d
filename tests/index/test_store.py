"""The vector store: one contract for Chroma and the in-memory fake, and what "the server is unreachable" is."""

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from chromadb.errors import NotFoundError

import bot.index.store
from bench.servers import ChromaServer
from bot.index import IndexUnavailable, View, build_index, open_index, store_unreachable
from bot.index.store import (
    ChromaStore,
    Deadline,
    StoreTimeout,
    VectorStore,
    collection_names,
    connect,
)
from bot.settings import Settings
from tests.conftest import CORPUS
from tests.fakes import HashEmbeddings, InMemoryStore

# -- one contract: ChromaStore (a real embedded Chroma) and the fake must agree ----------------------------


@pytest.fixture(params=[pytest.param("chroma", marks=pytest.mark.integration), "memory"])
def store(request, tmp_path: Path) -> VectorStore:
    if request.param == "memory":
        return InMemoryStore()
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path / "index", collection="contract")
    return connect(settings).stores(settings)[View.text]


COMPASS = {
    "north": ([1.0, 0.0, 0.0], {"chunk_id": "p", "n": 1}),
    "north-east": ([0.6, 0.8, 0.0], {"chunk_id": "p", "n": 2}),
    "east": ([0.0, 1.0, 0.0], {"chunk_id": "q", "n": 3}),
    "down-ish": ([-0.2, 0.0, 0.98], {"chunk_id": "r", "n": 4}),
}


def fill(store: VectorStore, entries=COMPASS) -> None:
    store.upsert(list(entries), [v for v, _ in entries.values()], [f"text of {i}" for i in entries],
                 [m for _, m in entries.values()])  # fmt: skip


def scores(found: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return [(item, round(score, 5)) for item, score in found]


def test_an_empty_store_holds_nothing_and_accepts_empty_requests(store: VectorStore) -> None:
    assert isinstance(store, VectorStore)
    assert store.count() == 0
    assert store.query([1.0, 0.0, 0.0], 3) == []
    for ids in ([], ["missing"]):
        assert store.held(ids) == set() and store.vectors(ids) == {} and store.records(ids) == {}
    store.delete([])  # Chroma refuses empty id lists: the store must not pass them on
    store.delete_where("chunk_id", [])
    store.upsert([], [], [], [])
    assert store.count() == 0


def test_a_query_returns_the_nearest_ids_with_their_cosine_similarity_nearest_first(store: VectorStore) -> None:
    fill(store)
    assert store.count() == 4
    assert scores(store.query([1.0, 0.0, 0.0], 2)) == [("north", 1.0), ("north-east", 0.6)]
    # more than it holds: all of them; a similarity may be negative (cosine distance above 1)
    assert scores(store.query([1.0, 0.0, 0.0], 10)) == [("north", 1.0), ("north-east", 0.6), ("east", 0.0),
                                                        ("down-ish", -0.19996)]  # fmt: skip
    # cosine: a vector's length does not matter
    assert [i for i, _ in store.query([0.0, 5.0, 0.0], 2)] == ["east", "north-east"]


def test_reads_by_id_return_what_is_held_and_skip_the_rest(store: VectorStore) -> None:
    fill(store)
    assert store.held(["north", "nowhere", "east"]) == {"north", "east"}
    vectors = store.vectors(["north-east", "nowhere"])
    assert list(vectors) == ["north-east"] and vectors["north-east"].dtype == np.float32
    assert vectors["north-east"].tolist() == pytest.approx([0.6, 0.8, 0.0])
    assert store.records(["nowhere", "north"]) == {"north": {"chunk_id": "p", "n": 1}}


def test_upserting_a_held_id_replaces_its_vector_and_record(store: VectorStore) -> None:
    fill(store)
    store.upsert(["north"], [[0.0, 0.0, 1.0]], ["moved"], [{"chunk_id": "z", "n": 9}])
    assert store.count() == 4
    assert store.records(["north"]) == {"north": {"chunk_id": "z", "n": 9}}
    assert store.vectors(["north"])["north"].tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert store.query([0.0, 0.0, 1.0], 1)[0][0] == "north"


def test_deletes_by_id_and_by_a_metadata_value(store: VectorStore) -> None:
    fill(store)
    store.delete(["north", "nowhere"])
    assert store.count() == 3 and store.held(list(COMPASS)) == {"north-east", "east", "down-ish"}
    store.delete_where("chunk_id", ["q", "r", "nothing"])
    assert store.held(list(COMPASS)) == {"north-east"}
    assert [i for i, _ in store.query([1.0, 0.0, 0.0], 5)] == ["north-east"]


def test_requests_larger_than_one_chroma_call_are_split_and_complete(store: VectorStore, monkeypatch) -> None:
    for name in ("_READ_BATCH", "_WRITE_BATCH", "_DELETE_BATCH"):
        monkeypatch.setattr(bot.index.store, name, 2)
    many = {f"id{n}": ([1.0, float(n), 0.0], {"chunk_id": f"c{n % 3}"}) for n in range(7)}
    fill(store, many)
    assert store.count() == 7 and store.held(list(many)) == set(many)
    assert set(store.records(list(many))) == set(store.vectors(list(many))) == set(many)
    store.delete_where("chunk_id", ["c0", "c1"])
    assert store.held(list(many)) == {"id2", "id5"}
    store.delete(list(many))
    assert store.count() == 0


def test_each_vector_view_has_its_own_collection() -> None:
    names = collection_names(Settings(collection="gym"))
    assert names == {View.text: "gym-text", View.sentences: "gym-sentences"}


# -- "unreachable" is a matter of exception types ------------------------------------------------------------

SERVER = Settings(chroma_url="http://127.0.0.1:9")
EMBEDDED = Settings()


def chained(outer: BaseException, inner: BaseException, *, implicit: bool = False) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as error:
            if implicit:
                raise outer  # noqa: B904 - what chromadb does: the original is the context
            raise outer from error
    except BaseException as raised:
        return raised


REQUEST = httpx.Request("POST", "http://127.0.0.1:9/api/v2/collections")


@pytest.mark.parametrize(
    ("error", "unreachable"),
    [
        # what every call raises when nothing listens on the port
        (httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST), True),
        # chromadb.HttpClient() re-raises that as "Could not connect to a Chroma server…"
        (chained(ValueError("Could not connect to a Chroma server."), httpx.ConnectError("refused")), True),
        # its tenant check re-raises any other error inside an except block: the context is the cause
        (chained(ValueError("Could not connect to tenant."), httpx.ReadTimeout("timed out"), implicit=True), True),
        # a server that stops answering, or breaks off an answer
        (httpx.ReadTimeout("timed out"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), True),
        # our own deadline (a TimeoutError), and raw socket errors
        (StoreTimeout("The Chroma server did not answer within 30 s."), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        # the words do not matter, the type does
        (ValueError("Could not connect to a Chroma server. Are you sure it is running?"), False),
        # the server answered: a missing collection is damage, not absence
        (NotFoundError("Collection [knee-text] does not exist"), False),
        (FileNotFoundError("index/lexical-v3"), False),
        (RuntimeError("its BM25 index disagrees with the manifest"), False),
    ],
)
def test_which_errors_mean_the_chroma_server_is_unreachable(error: BaseException, unreachable: bool) -> None:
    assert store_unreachable(SERVER, error) is unreachable
    assert store_unreachable(EMBEDDED, error) is False  # an embedded store cannot be unreachable


def test_a_cycle_of_causes_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert store_unreachable(SERVER, first) is False


# -- the deadline on each server call --------------------------------------------------------------------


def test_the_deadline_returns_a_calls_result_and_re_raises_its_error() -> None:
    deadline = Deadline(5.0)
    assert deadline(lambda: 42) == 42
    with pytest.raises(httpx.ConnectError):
        deadline(lambda: (_ for _ in ()).throw(httpx.ConnectError("refused")))


def test_a_call_past_its_deadline_raises_store_timeout_and_leaves_only_a_daemon_thread_waiting() -> None:
    release = threading.Event()
    threads: list[threading.Thread] = []

    def hung() -> None:
        threads.append(threading.current_thread())
        release.wait(30)

    started = time.monotonic()
    with pytest.raises(StoreTimeout, match=r"did not answer within 0\.2 s") as caught:
        Deadline(0.2)(hung)
    assert 0.2 <= time.monotonic() - started < 2
    assert isinstance(caught.value, TimeoutError) and store_unreachable(SERVER, caught.value)
    assert threads and threads[0].daemon  # it can never hold up the process's exit
    assert Deadline(5.0)(lambda: "still served") == "still served"  # one stuck call does not block the rest
    release.set()


# -- against a real `chroma run`: stopped, frozen, started again ---------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_a_stopped_or_frozen_chroma_server_is_reported_unreachable(tmp_path: Path, monkeypatch) -> None:
    chroma = ChromaServer(tmp_path / "chroma").start()
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path / "index", chroma_url=chroma.url)
    try:
        build_index(settings, HashEmbeddings())
        connection = connect(settings)
        store = connection.stores(settings)[View.text]
        assert isinstance(store, ChromaStore) and store.count() > 30

        # Frozen: the kernel accepts connections that are never answered. Chroma's client would wait forever.
        monkeypatch.setattr(bot.index.store, "STORE_TIMEOUT", 0.5)
        assert chroma.process is not None
        os.kill(chroma.process.pid, signal.SIGSTOP)
        try:
            frozen = ChromaStore(store.collection, deadline=Deadline(0.5))
            for call in (lambda: frozen.query([1.0] * 384, 3), lambda: connect(settings)):
                started = time.monotonic()
                with pytest.raises(StoreTimeout) as caught:
                    call()
                assert time.monotonic() - started < 5 and store_unreachable(settings, caught.value)
        finally:
            os.kill(chroma.process.pid, signal.SIGCONT)
        assert len(frozen.query([1.0] * 384, 3)) == 3  # answered again once it runs

        # Stopped: each kind of call fails with an error that says so, and opening the index says it in words.
        chroma.stop()
        calls = {
            "query": lambda: store.query([1.0] * 384, 3),
            "held": lambda: store.held(["x"]),
            "upsert": lambda: store.upsert(["x"], [[1.0] * 384], ["x"], [{"chunk_id": "x"}]),
            "count": store.count,
            "open the collections": lambda: connection.stores(settings),
            "a new client": lambda: connect(settings),
        }
        for name, call in calls.items():
            with pytest.raises(Exception) as caught:
                call()
            assert store_unreachable(settings, caught.value), (name, repr(caught.value))
        with pytest.raises(IndexUnavailable, match=f"The Chroma server at {chroma.url} is unreachable."):
            open_index(settings, HashEmbeddings(), rebuild=False)
    finally:
        chroma.stop()
