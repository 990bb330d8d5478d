"""Every finding of the hardening probe (issue 16), replayed against the real server on loopback, fixed.

One server process serves the whole module — uvicorn configured as ``app.py`` configures it, the whole app
and its chat page, over ``FakeEngine`` so that it starts in seconds (``tests/security/serve.py``) — with small
limits: 5 questions (and 5 ratings) a minute per client, a daily cap of 20 per site (a tenth per client), a
1 s header and 2 s body deadline, 30 connections, one trusted proxy (127.0.0.9). Each test asks from its own
loopback address (127.0.0.N), so their limits don't meet. Bounded: well under a minute in all.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.hostile import load, page_fn_indices
from bot import policy
from bot.policy import DISCLAIMER
from bot.settings import PROJECT_ROOT
from tests.conftest import CHROMIUM_INSTALL, chromium_or_fail
from tests.processes import AppProcess, page_when_built

pytestmark = [pytest.mark.slow]

PROXY = "127.0.0.9"
TOKEN = "a-metrics-token-for-the-test"
GYM = "http://gym.test:8000"
QUESTION = "Where should my feet go on the leg press?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    tmp = tmp_path_factory.mktemp("security")
    app = AppProcess(tmp, command=["-m", "tests.security.serve"], index_dir=tmp / "index", rate_limit="5/minute",
                     daily_cap_per_origin=20, cors_origins=f"http://gym.test:80,{GYM}", trusted_proxies=PROXY,
                     allowed_hosts="coach.gym.test", metrics_token=TOKEN, header_timeout=1, body_timeout=2,
                     max_connections=30)  # fmt: skip
    with app:
        app.wait_ready(120)
        assert page_when_built(lambda: httpx.get(f"{app.url}/api/health", timeout=5).json()) == "ready"
        yield app


@pytest.fixture(scope="module")
def events(server: AppProcess) -> dict[str, int]:
    """The chat page's events by name (``respond``, ``rate``, ``ask``…): their ``fn_index``."""
    return page_fn_indices(httpx.get(f"{server.url}/config", timeout=10).json())


def client(server: AppProcess, n: int, **options: Any) -> httpx.Client:
    """A client asking from 127.0.0.``n``."""
    transport = httpx.HTTPTransport(local_address=f"127.0.0.{n}")
    return httpx.Client(base_url=server.url, transport=transport, timeout=20, **options)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def in_one_minute_window(seconds: float = 20) -> None:
    """Wait until the next ``seconds`` fall within one clock minute, the window the limits count in.

    Across a window's boundary the sliding-window counter weighs the last window's requests by how much of it
    is left, so a burst straddling it may be let in one request over its limit: a test counting to the limit
    must not straddle one on a slow machine.
    """
    if (left := 60 - time.time() % 60) < seconds:
        time.sleep(left + 0.05)


def join(events: dict[str, int], name: str, data: list[Any], session: str) -> dict[str, Any]:
    return {"data": data, "fn_index": events[name], "session_hash": session, "event_data": None}


def raw_request(server: AppProcess, head: bytes, source: str = "127.0.0.1") -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(source, 0))
    connection.sendall(head)
    return connection


def read_all(connection: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(OSError):
        while chunk := connection.recv(65536):
            data += chunk
    connection.close()
    return data


# -- 1. memory exhaustion through the chat page's queue --------------------------------------------------


def test_f01_huge_questions_to_the_pages_queue_are_refused_unread_and_memory_stays_flat(server, events) -> None:
    pid = server.process.pid  # type: ignore[union-attr]
    before = rss_mb(pid)
    body = json.dumps(join(events, "respond", ["knee " * 6_000_000, None], "f01")).encode()  # 30 MB
    for _ in range(5):
        with client(server, 11) as c:
            response = c.post("/gradio_api/queue/join", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 413 and response.json()["error"] == "request_too_large"
    for _ in range(2):  # the same, sent without a length: refused once past the limit
        head = (b"POST /gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        connection = raw_request(server, head, "127.0.0.11")
        with contextlib.suppress(OSError):
            for _ in range(30):
                connection.sendall(b"100000\r\n" + b"k" * 0x100000 + b"\r\n")
        assert b" 413 " in read_all(connection)[:40]
    after = rss_mb(pid)
    print(f"server RSS before {before:.1f} MB, after 7 x 30 MB questions {after:.1f} MB")
    assert after - before < 30


def test_f01_a_question_longer_than_the_box_or_from_a_client_over_its_limit_is_refused_first(server, events) -> None:
    in_one_minute_window()
    with client(server, 12) as c:
        long = c.post("/gradio_api/queue/join", json=join(events, "respond", ["knee " * 1000, None], "f01b"))
        assert long.status_code == 422 and long.json()["message"] == policy.question_too_long(1000)
        asked = [c.post("/gradio_api/queue/join", json=join(events, "respond", [QUESTION, None], "f01b"))
                 for _ in range(7)]  # fmt: skip
    assert [r.status_code for r in asked] == [200] * 5 + [429] * 2  # counted before Gradio keeps anything
    assert asked[-1].json()["error"] == "rate_limited" and asked[-1].json()["detail"] == asked[-1].json()["message"]


# -- 2. the rate limit bypassed with X-Forwarded-For -----------------------------------------------------


@pytest.mark.parametrize(
    ("n", "path", "body"),
    [
        (21, "/api/chat", {"message": QUESTION}),
        (22, "/gradio_api/call/ask", {"data": [QUESTION, []]}),
    ],
)
def test_f02_a_forged_forwarded_for_does_not_make_a_new_client(server, n: int, path: str, body: dict) -> None:
    in_one_minute_window()
    with client(server, n) as c:
        codes = [c.post(path, json=body, headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"198.51.100.{i}"})
                 .status_code for i in range(8)]  # fmt: skip
    assert codes == [200] * 5 + [429] * 3


def test_f02_feedback_is_limited_per_client_whatever_it_forwards(server) -> None:
    in_one_minute_window()
    with client(server, 23) as c:
        answer = c.post("/api/chat", json={"message": QUESTION}).json()
        codes = [c.post("/api/feedback", json={"rating": "up", "answer": answer},
                        headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(7)]  # fmt: skip
    assert codes == [201] * 5 + [429] * 2


def test_f02_behind_the_trusted_proxy_the_right_most_untrusted_hop_counts_and_ipv6_by_its_64(server) -> None:
    def ask(forwarded: str) -> int:
        with client(server, 9) as proxy:
            return proxy.post(
                "/api/chat", json={"message": QUESTION}, headers={"X-Forwarded-For": forwarded}
            ).status_code

    in_one_minute_window()
    # A client's own forged hop stays left of the one the proxy appended: the proxy's is the client.
    assert [ask(f"10.9.9.{i}, 198.51.100.7") for i in range(6)] == [200] * 5 + [429]
    assert ask("198.51.100.8") == 200  # another visitor behind the same proxy
    assert [ask(f"2001:db8:aa:bb::{i}") for i in range(1, 7)] == [200] * 5 + [429]  # one /64
    assert ask("2001:db8:aa:bc::1") == 200  # the next /64


# -- 3. uploads ----------------------------------------------------------------------------------------


def test_f03_uploads_and_files_from_disk_are_closed_and_name_no_path(server) -> None:
    with client(server, 31) as c:
        big = c.post("/gradio_api/upload", files={"files": ("big.bin", b"\0" * 20_000_000)})
        small = c.post("/gradio_api/upload", files={"files": ("x.txt", b"hello")})
        paths = ("/gradio_api/file=/etc/passwd", "/gradio_api/file/etc/hostname", "/gradio_api/proxy=http://127.0.0.1:1/",
                 "/gradio_api/upload_progress")  # fmt: skip
        served = [c.get(path) for path in paths]
    assert big.status_code == 413 and small.status_code == 404
    assert [r.status_code for r in served] == [404] * 4
    assert all("/tmp" not in r.text and "path" not in r.json() for r in [big, small, *served])


# -- 4. host poisoning ---------------------------------------------------------------------------------


def test_f04_a_forwarded_host_from_anyone_but_the_proxy_never_becomes_the_pages_root(server) -> None:
    forged = {"X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "https", "X-Gradio-Server": "http://evil.test"}
    with client(server, 41) as c:
        config = c.get("/config", headers=forged).json()
        page = c.get("/", headers=forged).text
        rebinding = c.get("/", headers={"Host": "evil.test"})
    assert config["root"] == server.url and "evil.test" not in page
    assert rebinding.status_code == 400 and rebinding.json()["error"] == "host_not_allowed"


def test_f04_the_trusted_proxy_names_the_public_host_and_scheme(server) -> None:
    with client(server, 9) as proxy:
        named = {"X-Forwarded-Host": "coach.gym.test", "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.4"}
        assert proxy.get("/config", headers=named).json()["root"] == "https://coach.gym.test"
        unknown = proxy.get("/config", headers={**named, "X-Forwarded-Host": "evil.test"})
    assert unknown.status_code == 400  # not a host the server answers to, even from the proxy


# -- 5. a forged Origin spends a site's daily cap ------------------------------------------------------


def test_f05_one_client_forging_an_origin_cannot_spend_the_sites_daily_cap(server) -> None:
    origin = {"Origin": GYM}
    with client(server, 51) as forger:
        told = [forger.post("/api/chat", json={"message": QUESTION}, headers=origin) for _ in range(7)]
        answer = told[0].json()
        rated = forger.post("/api/feedback", json={"rating": "up", "answer": answer}, headers=origin)
    assert [r.status_code for r in told] == [200, 200] + [429] * 5  # its share: a tenth of 20
    assert told[-1].json()["message"] == policy.SITE_SHARE_REACHED and rated.status_code == 201  # ratings don't count
    with client(server, 52) as visitor:  # a real visitor of the site is still answered
        assert visitor.post("/api/chat", json={"message": QUESTION}, headers=origin).status_code == 200
    with client(server, 51) as forger:  # and without an Origin the forger is just a client (its own limit)
        assert forger.post("/api/chat", json={"message": QUESTION}).status_code == 200


# -- 6. ratings ----------------------------------------------------------------------------------------


def test_f06_the_pages_thumbs_are_rate_limited(server, events) -> None:
    in_one_minute_window()
    session = "f06"
    with client(server, 61) as c:
        assert (
            c.post("/gradio_api/queue/join", json=join(events, "respond", [QUESTION, None], session)).status_code == 200
        )
        time.sleep(1)
        like = {**join(events, "rate", [None], session), "event_data": {"index": 1, "value": "", "liked": True}}
        codes = [c.post("/gradio_api/queue/join", json=like).status_code for _ in range(8)]
    assert codes == [200] * 5 + [429] * 3


def test_f06_only_the_servers_own_answers_are_stored_and_the_export_escapes_markup(server, tmp_path) -> None:
    with client(server, 62) as c:
        made_up = {"question": "<b>Is 800 mg fine?</b>", "status": "answered", "answer": "Yes, take 800 mg.",
                   "disclaimer": "", "answer_id": "A" * 43}  # fmt: skip
        forged = c.post("/api/feedback", json={"rating": "down", "answer": made_up})
        markup = c.post("/api/chat", json={"message": "<img src=x onerror=alert(1)> my knee hurts"}).json()
        stored = c.post("/api/feedback", json={"rating": "down", "comment": "<script>x()</script>", "answer": markup})
    assert forged.status_code == 403 and forged.json()["error"] == "answer_not_verified"
    assert stored.status_code == 201
    env = {**os.environ, "BOT_DATA_DIR": server.env["BOT_DATA_DIR"]}
    export = subprocess.run([sys.executable, "-m", "bot", "feedback", "export", "-o", "-"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    assert "<img" not in export and "<script>" not in export and "&lt;img src=x onerror=alert(1)&gt;" in export
    assert "markup-escaped" in export and "800 mg" not in export


# -- 7. a lone surrogate --------------------------------------------------------------------------------


def test_f07_a_lone_surrogate_is_an_invalid_answer_everywhere_and_the_connection_stays_open(server) -> None:
    body = b'{"message": "knee \\ud800 pain"}'
    head = (b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))  # fmt: skip
    with client(server, 71) as c:
        first = c.post("/api/chat", content=body, headers={"Content-Type": "application/json"})
        again = c.post("/api/chat", json={"message": QUESTION})  # on the same keep-alive connection
        stream = c.post("/api/chat/stream", content=body, headers={"Content-Type": "application/json"})
        page = c.post("/gradio_api/call/ask", content=b'{"data": ["knee \\ud800 pain", []]}',
                      headers={"Content-Type": "application/json"})  # fmt: skip
        result = c.get(f"/gradio_api/call/ask/{page.json()['event_id']}").text
    assert first.status_code == 200 and first.json()["status"] == "invalid" and first.json()["reason"] == "unreadable"
    assert first.json()["answer"].endswith(DISCLAIMER) and first.headers.get("connection") != "close"
    assert again.status_code == 200
    assert (
        "event: answer" in stream.text and '"reason":"unreadable"' in stream.text and "event: error" not in stream.text
    )
    assert "event: complete" in result and "unreadable" in result
    connection = raw_request(server, (head + body) * 2, "127.0.0.72")  # two on one raw connection: both answered
    time.sleep(1)
    connection.shutdown(socket.SHUT_WR)
    assert read_all(connection).count(b"HTTP/1.1 200") == 2


# -- 8. slow clients -----------------------------------------------------------------------------------


def test_f08_slow_clients_are_closed_while_others_are_served(server) -> None:
    request = b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    silent = [raw_request(server, b"", "127.0.0.81") for _ in range(5)]  # connect, send nothing
    trickling = [raw_request(server, request[:1], "127.0.0.82") for _ in range(5)]  # headers a byte at a time
    slow_body = raw_request(server, b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                    b"Content-Length: 1000\r\n\r\n{", "127.0.0.83")  # fmt: skip
    stop = threading.Event()

    def trickle() -> None:
        for byte in request[1:]:
            if stop.is_set():
                return
            for connection in trickling:
                with contextlib.suppress(OSError):
                    connection.send(bytes([byte]))
            time.sleep(0.2)

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    try:
        with client(server, 84) as c:  # meanwhile, others are served
            assert c.post("/api/chat", json={"message": QUESTION}).status_code == 200
        closed = [read_all(connection) for connection in [*silent, *trickling, slow_body]]
    finally:
        stop.set()
    took = time.monotonic() - started
    assert took < 6, f"the slow connections were closed only after {took:.1f} s"
    assert all(b" 408 " in reply[:40] for reply in closed[:10])  # too slow with their headers: a JSON 408
    assert b"HTTP/1.1 200" not in closed[10]  # too slow with its body: closed


def test_f08_connections_over_the_limit_get_a_json_503_with_the_disclaimer(server) -> None:
    held = [raw_request(server, b"", "127.0.0.85") for _ in range(30)]
    time.sleep(0.2)
    extra = raw_request(server, b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "127.0.0.86")
    reply = read_all(extra)
    for connection in held:
        connection.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 5" in head.lower()
    assert json.loads(body) == {"error": "server_busy", "message": policy.SERVER_BUSY, "disclaimer": DISCLAIMER}
    time.sleep(0.3)
    with client(server, 87) as c:
        assert c.get("/api/health").status_code == 200  # served again once they are gone


# -- 9. information ------------------------------------------------------------------------------------


def test_f09_metrics_and_the_healths_details_only_for_loopback_or_the_token(server) -> None:
    with client(server, 9) as proxy:  # a remote visitor, through the proxy
        remote = {"X-Forwarded-For": "198.51.100.9"}
        metrics = proxy.get("/api/metrics", headers=remote)
        health = proxy.get("/api/health", headers=remote).json()
        with_token = proxy.get("/api/metrics", headers={**remote, "Authorization": f"Bearer {TOKEN}"})
        wrong_token = proxy.get("/api/metrics", headers={**remote, "Authorization": "Bearer guess"})
    with client(server, 91) as local:
        local_health = local.get("/api/health")
    assert metrics.status_code == 401 and metrics.json()["error"] == "not_authorised" and wrong_token.status_code == 401
    assert with_token.status_code == 200 and "bot_http_requests_total" in with_token.text
    assert "worker" not in health and {
        "status",
        "ready",
        "version",
        "index_version",
        "page",
        "composer",
        "store",
    } <= set(health)
    assert local_health.json()["worker"] == server.process.pid  # type: ignore[union-attr]
    for response in (metrics, with_token, local_health):
        assert "server" not in response.headers and "uvicorn" not in str(response.headers).lower()


# -- 10. integrator mistakes ---------------------------------------------------------------------------


def test_f10_origins_are_normalised_and_the_same_origin_check_compares_the_scheme(server) -> None:
    with client(server, 101) as c:
        listed = c.post("/api/chat", json={"message": QUESTION}, headers={"Origin": "http://gym.test"})  # listed :80
        other_scheme = c.post(
            "/api/chat", json={"message": QUESTION}, headers={"Origin": server.url.replace("http", "https")}
        )
        site = c.get("/api/site", headers={"Origin": "http://stranger.test"})
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == "http://gym.test"
    assert other_scheme.status_code == 403
    assert site.json() == {"allowed": False, "message": policy.ORIGIN_NOT_ALLOWED}
    assert site.headers["access-control-allow-origin"] == "http://stranger.test"  # the widget can read why


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("BOT_CORS_ORIGINS", "https://*.gym.example", "has a wildcard, which is not supported"),
        ("BOT_RATE_LIMIT", "0", "accepted: 'off' (no per-client limit)"),
    ],
)
def test_f10_f12_a_bad_setting_is_one_line_and_exit_status_2(name: str, value: str, says: str) -> None:
    env = {**os.environ, name: value}
    result = subprocess.run([sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert (
        result.stderr.startswith(f"{name}='{value}': ") and says in result.stderr and "Traceback" not in result.stderr
    )


# -- 11. the API keeps its own schema (schemathesis itself: tests/server/test_openapi_conformance.py) -----


def test_f11_undeclared_methods_and_bodies_that_are_not_json_get_documented_json_errors(server) -> None:
    with client(server, 111) as c:
        trace = c.request("TRACE", "/api/chat")
        not_json = c.post("/api/chat", content=b"{not json", headers={"Content-Type": "application/json"})
        stream_422 = c.post("/api/chat/stream", json={"history": "x"})
        schema = c.get("/openapi.json").json()
    assert trace.status_code == 405 and trace.headers["allow"] == "POST" and set(trace.json()) == {"error", "message"}
    assert not_json.status_code == 422 and not_json.json()["error"] == "invalid_request"
    assert stream_422.status_code == 422 and stream_422.headers["content-type"] == "application/json"
    stream_docs = schema["paths"]["/api/chat/stream"]["post"]["responses"]
    assert "application/json" in stream_docs["422"]["content"] and "text/event-stream" in stream_docs["200"]["content"]
    assert {"400", "422"} <= set(schema["paths"]["/api/chat"]["post"]["responses"])


# -- 12. a first run -----------------------------------------------------------------------------------


def test_f12_without_chromium_the_browser_tests_fail_saying_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        chromium_or_fail(tmp_path / "chromium", may_install=False)
    assert CHROMIUM_INSTALL in str(failed.value) and "sudo" in str(failed.value)


# -- every class of hostile input at once ----------------------------------------------------------------


def test_the_hostile_corpus_gets_no_server_error_and_every_answer_keeps_the_disclaimer(server, events) -> None:
    replies = []
    with client(server, 9) as proxy:  # each request from its own visitor behind the proxy: none is limited
        for number, hostile in enumerate(load()):
            request = hostile.for_page(events)
            headers = {**request.headers, "X-Forwarded-For": f"192.0.2.{number % 250}"}
            response = proxy.post(request.path, content=request.body, headers=headers)
            replies.append((request, response))
    errors = [(r.kind, r.note, response.status_code) for r, response in replies if response.status_code >= 500]
    assert errors == []
    answers = [response.json() for r, response in replies
               if response.status_code == 200 and r.path == "/api/chat"]  # fmt: skip
    assert answers and all(answer["answer"].endswith(DISCLAIMER) for answer in answers)
    streams = [response.text for r, response in replies if r.path == "/api/chat/stream" and response.status_code == 200]
    assert all("event: answer" in text for text in streams)


def test_the_server_still_stops_cleanly_afterwards(server) -> None:
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert "Traceback" not in server.stderr()
