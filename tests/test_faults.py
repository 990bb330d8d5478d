"""Parts failing under a running service: it answers politely while they are down and recovers by itself.

Real processes on loopback (``python app.py``, ``chroma run``), bounded in time; the feedback fault runs
in-process against a real SQLite file broken from outside.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bench.servers import ChromaServer
from bot.index import IndexFiles, build_index
from bot.index.store import forget_chroma_clients
from bot.policy import DISCLAIMER
from bot.server.app import create_app
from bot.settings import Settings
from tests.processes import AppProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def chat(url: str, message: str) -> httpx.Response:
    return httpx.post(f"{url}/api/chat", json={"message": message}, timeout=30)


def assert_store_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "store_unavailable" and body["disclaimer"] == DISCLAIMER
    assert "try again" in body["message"] and "Traceback" not in response.text
    assert response.headers["retry-after"]


def test_while_the_store_is_down_the_app_says_so_and_it_recovers_by_itself(
    tmp_path: Path, corpus_copy: Path, embeddings
) -> None:
    chroma = ChromaServer(tmp_path / "chroma").start()
    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", chroma_url=chroma.url)
    build_index(settings, embeddings)
    chroma.stop()
    app = AppProcess(tmp_path, corpus_dir=corpus_copy, index_dir=settings.index_dir, chroma_url=chroma.url)
    try:
        with app:
            # Started while the store is down: the process stays up, not ready, saying why.
            wait_for(lambda: app.health() is not None, 120, app.check_alive)
            health = app.health()
            assert health is not None and health.status_code == 503
            assert health.json()["status"] == "store_unavailable" and not health.json()["ready"]
            assert_store_unavailable(chat(app.url, "Where should my feet go?"))

            chroma.start()  # the same port and folder
            app.wait_ready(60)
            assert chat(app.url, "Where should my feet go?").json()["status"] == "answered"

            chroma.stop()  # down while serving
            wait_for(lambda: (h := app.health()) is not None and h.json()["status"] == "store_unavailable", 10)
            assert_store_unavailable(chat(app.url, "Do knee sleeves help?"))  # a question not cached

            chroma.start()
            wait_for(lambda: (h := app.health()) is not None and h.status_code == 200, 30)
            answer = chat(app.url, "Do knee sleeves help?")
            assert answer.status_code == 200 and answer.json()["status"] == "answered"
        assert "Traceback" not in app.stderr()
    finally:
        chroma.stop()


def test_the_app_rebuilds_a_corrupted_embedded_index_and_answers(tmp_path: Path, corpus_copy: Path, embeddings) -> None:
    settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index")
    build_index(settings, embeddings)
    forget_chroma_clients()
    (IndexFiles(settings.index_dir).chroma / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with AppProcess(tmp_path, corpus_dir=corpus_copy, index_dir=settings.index_dir) as app:
        app.wait_ready(120)
        answer = chat(app.url, "How far apart should my feet be?").json()
        assert answer["status"] == "answered" and "shoulder-width" in answer["answer"]
    assert "damaged" in app.stderr() and "rebuilding it from scratch" in app.stderr()


def send_chat(port: int, message: str, *, held_back: int = 0) -> tuple[socket.socket, bytes]:
    """A ``POST /api/chat`` written on a raw connection, less its last ``held_back`` bytes (returned)."""
    body = json.dumps({"message": message}).encode()
    request = (b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    cut = len(request) - held_back
    connection.sendall(request[:cut])
    return connection, request[cut:]


def read_answer(connection: socket.socket) -> str:
    """The answer text of the response on ``connection`` (which must be 200), read to its end."""
    response = b""
    while chunk := connection.recv(65536):
        response += chunk
    connection.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response[:300]
    return json.loads(payload)["answer"]


def test_sigterm_lets_requests_in_flight_finish(index_settings: Settings, engine, tmp_path: Path) -> None:
    app = AppProcess(tmp_path, corpus_dir=index_settings.corpus_dir, index_dir=index_settings.index_dir,
                     worker_threads=1)  # fmt: skip
    with app:
        app.wait_ready(120)
        # A slow request: its headers and part of its body arrive before SIGTERM, the rest after.
        slow, rest = send_chat(app.port, "Where should my feet go?", held_back=12)
        # And a queue of questions behind the one answering thread, all sent before SIGTERM; once the
        # first is answered the server has accepted them all (its event loop takes every pending one).
        queued = [send_chat(app.port, f"Is it bad to lock my knees? (ask {n})")[0] for n in range(12)]
        first = read_answer(queued.pop(0))
        assert app.process is not None
        app.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        with pytest.raises(httpx.ConnectError):  # draining: no new connections
            httpx.get(f"{app.url}/api/health", timeout=5)
        slow.sendall(rest)
        answers = [first, read_answer(slow), *(read_answer(connection) for connection in queued)]
        assert len(answers) == 13 and all(answer.endswith(DISCLAIMER) for answer in answers)
        assert app.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Traceback" not in app.stderr()


def test_a_failed_feedback_write_is_logged_and_never_breaks_the_answers(
    index_settings: Settings, engine, tmp_path: Path, json_logs: Callable[[], list[dict]]
) -> None:
    settings = index_settings.model_copy(update={"data_dir": tmp_path / "data", "rate_limit": "1000/minute"})
    with TestClient(create_app(settings, engine=engine, page=False)) as client:
        answer = client.post("/api/chat", json={"message": "Where should my feet go?"}).json()
        # Someone breaks the database under the running app.
        with sqlite3.connect(tmp_path / "data" / "feedback.sqlite3") as db:
            db.execute("ALTER TABLE feedback RENAME TO feedback_broken")
        rated = client.post("/api/feedback", json={"rating": "down", "answer": answer},
                            headers={"X-Request-ID": "rating-42"})  # fmt: skip
        again = client.post("/api/chat", json={"message": "Where should my feet go?"})
    assert rated.status_code == 503 and rated.json()["error"] == "feedback_unavailable"
    assert "could not be saved" in rated.json()["message"] and rated.headers["x-request-id"] == "rating-42"
    assert again.status_code == 200 and again.json()["answer"] == answer["answer"]
    entries = json_logs()
    [logged] = [e for e in entries if e["level"] == "ERROR"]
    assert logged["request_id"] == "rating-42" and "storing a rating failed" in logged["message"]
    assert "no such table" in logged["exception"]


def test_every_acknowledged_rating_survives_a_kill_9_mid_rating(
    index_settings: Settings, engine, tmp_path: Path
) -> None:
    app = AppProcess(tmp_path, corpus_dir=index_settings.corpus_dir, index_dir=index_settings.index_dir)
    acknowledged: list[int] = []
    for _round in range(2):  # the second round also checks the store and the signing key survive a restart
        with app:
            app.wait_ready(120)
            answer = chat(app.url, "Where should my feet go?").json()
            stop = threading.Event()

            def rate(acknowledged: list[int] = acknowledged, answer: dict = answer, stop: threading.Event = stop):
                with httpx.Client(base_url=app.url, timeout=10) as client:
                    while not stop.is_set():
                        try:
                            reply = client.post("/api/feedback", json={"rating": "down", "answer": answer})
                        except httpx.HTTPError:
                            return  # the server is gone: what it acknowledged so far counts
                        assert reply.status_code == 201, reply.text
                        acknowledged.append(reply.json()["id"])

            raters = [threading.Thread(target=rate) for _ in range(8)]
            for thread in raters:
                thread.start()
            time.sleep(1.5)
            assert app.process is not None
            os.killpg(app.process.pid, signal.SIGKILL)  # mid-rating: no chance to finish anything
            stop.set()
            for thread in raters:
                thread.join(timeout=30)
    with sqlite3.connect(tmp_path / "data" / "feedback.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in db.execute("SELECT id FROM feedback WHERE verified = 1")}
    print(f"{len(acknowledged)} ratings acknowledged over 2 kill -9 rounds; {len(set(acknowledged) - stored)} lost")
    assert len(acknowledged) > 50 and set(acknowledged) <= stored  # 0 acknowledged ratings lost
