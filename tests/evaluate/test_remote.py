"""``bot eval --url`` in process, over ``httpx.MockTransport``: every route gives the runner the same ``Answer``,
429/503 are waited out after their ``Retry-After`` within ``--max-wait``, and every way a server can't be
evaluated stops the run with one plain sentence (no model, no network, no real waiting: milliseconds).
"""

from __future__ import annotations

import json
import re
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from bot.evaluate.loader import load_question_set
from bot.evaluate.remote import (
    Connection,
    LimitNeverClears,
    NotTheCoach,
    Refused,
    Route,
    ServerOptions,
    TlsFailure,
    Unreachable,
    check_server,
    parse_header,
    remote_asker,
    version_warning,
)
from bot.evaluate.remote.connection import retry_after
from bot.evaluate.remote.health import ServerHealth
from bot.evaluate.remote.run import run_remote
from bot.evaluate.runner import RunStopped, run_evaluation
from bot.evaluate.suite import plan_suite
from bot.settings import PROJECT_ROOT, Settings
from tests.evaluate.fake_coach import HEALTH, QUOTE, FakeCoach, canned_answer, refusal

URL = "http://coach.test"
SET = """name: remote
description: Two cases for the remote runner.
cases:
  - id: feet
    question: Where should my feet go?
    expect: answer
    must_include: [[shoulder-width]]
  - id: follow-up
    turns: ["Where should my feet go?", "and how wide?", "why?"]
    expect: answer
    must_include: [[shoulder-width]]
"""


@pytest.fixture
def set_file(tmp_path: Path) -> Path:
    path = tmp_path / "remote.yaml"
    path.write_text(SET, encoding="utf-8")
    return path


@pytest.fixture
def question_set(set_file: Path):
    return load_question_set(set_file, corpus_dir=PROJECT_ROOT / "corpus")


class Pauses(list[float]):
    """Records each wait instead of sleeping (returns False: the run was not stopped meanwhile)."""

    def __call__(self, seconds: float) -> bool:
        self.append(seconds)
        return False


def connect(coach: FakeCoach, pauses: Pauses | None = None, **options) -> Connection:
    pause = Pauses() if pauses is None else pauses
    return Connection(ServerOptions(URL, **options), transport=coach.transport(), pause=pause)


def asker(coach: FakeCoach, route: Route = Route.stream, pauses: Pauses | None = None, **options):
    connection = connect(coach, pauses, **options)
    return remote_asker(connection, check_server(connection), route)


# -- every route: the same Answer, histories sent -----------------------------------------------------


@pytest.mark.parametrize("route", list(Route))
def test_every_route_gives_the_runner_the_answer_the_server_computed(route: Route, question_set) -> None:
    coach = FakeCoach()
    run = run_evaluation(asker(coach, route), [question_set])
    assert [r.passed for r in run.results] == [True, True], [r.failures for r in run.results]
    expected = canned_answer("why?", [{}] * 4)
    got = run.results[1].answer
    assert got is not None and (got.status, got.answer, got.citations) == (
        expected.status, expected.answer, expected.citations)  # fmt: skip
    # The conversation's earlier turns went first, each with the real replies so far.
    history = run.results[1].history
    assert [turn["role"] for turn in history] == ["user", "assistant"] * 2 and "(turn 2)" in history[3]["content"]
    if route in {Route.stream, Route.chat}:
        sent = coach.asked(route.path)[-1]
        assert sent == {"message": "why?", "history": history}
        assert run.results[0].metrics.server_ms == 5.0  # the server's own timings_ms next to the client's latency
    else:
        sent = coach.asked(route.path)[-1]
        assert sent["model"] == "knee-coach" and sent["stream"] is route.streams
        assert sent["messages"] == [*history, {"role": "user", "content": "why?"}]
        assert run.results[0].metrics.server_ms is None  # chat completions carry no timings_ms
    assert (run.results[0].metrics.first_text_ms is not None) is route.streams


def test_requests_carry_the_headers_given(question_set) -> None:
    coach = FakeCoach()
    run_evaluation(asker(coach, headers=(("Authorization", "Bearer qa-key-0123456789"), ("X-Team", "qa"))),
                   [question_set])  # fmt: skip
    assert all(r.headers["authorization"] == "Bearer qa-key-0123456789" for r in coach.requests)
    assert all(r.headers["x-team"] == "qa" and r.headers["user-agent"].startswith("knee-coach-eval/")
               for r in coach.requests)  # fmt: skip


def test_concurrent_cases_keep_set_order_and_each_conversation_in_order(question_set) -> None:
    coach = FakeCoach()
    many = type(question_set)(name="remote", description="d", path=question_set.path,
                              cases=question_set.cases * 6)  # fmt: skip
    run = run_evaluation(asker(coach), [many], concurrency=4)
    assert [r.case.id for r in run.results] == [c.id for c in many.cases] and all(r.passed for r in run.results)


# -- waiting on Retry-After ------------------------------------------------------------------------------


def test_429_and_503_are_waited_out_after_their_retry_after_and_no_case_fails(question_set) -> None:
    pauses = Pauses()
    coach = FakeCoach(script=[refusal(429, "rate_limited", retry_after="7"),
                              refusal(503, "not_ready", retry_after="2"),
                              refusal(429, "rate_limited")])  # fmt: skip
    # The third refusal of the same request has no Retry-After: a second, doubled per attempt (the third: 4 s).
    remote = asker(coach, pauses=pauses)
    run = run_evaluation(remote, [question_set])
    assert all(r.passed for r in run.results) and pauses == [7.0, 2.0, 4.0]
    assert remote.connection.wait_summary() == {"count": 3, "seconds": 13.0,
                                                "by_reply": {"429 rate_limited": 2, "503 not_ready": 1}}  # fmt: skip


@pytest.mark.parametrize("route", [Route.chat, Route.openai])
def test_the_whole_reply_routes_wait_too(route: Route, question_set) -> None:
    pauses = Pauses()
    coach = FakeCoach(script=[refusal(429, "rate_limit_exceeded", retry_after="3", openai=True)])
    assert all(r.passed for r in run_evaluation(asker(coach, route, pauses), [question_set]).results)
    assert pauses == [3.0]


def test_a_limit_that_never_clears_stops_the_run_at_once_saying_what_to_do(question_set) -> None:
    pauses = Pauses()
    coach = FakeCoach(script=[refusal(429, "rate_limited", retry_after="86400")])  # a site's daily cap
    with pytest.raises(LimitNeverClears) as stopped:
        run_evaluation(asker(coach, pauses=pauses, max_wait=300), [question_set])
    message = str(stopped.value)
    assert "429 rate_limited" in message and "86400 s" in message and "--max-wait 300 s" in message
    assert "BOT_QA_KEYS" in message and pauses == []


def test_waits_that_add_up_past_max_wait_stop_the_run(question_set) -> None:
    pauses = Pauses()
    coach = FakeCoach(script=[refusal(503, "store_unavailable", retry_after="40") for _ in range(5)])
    with pytest.raises(LimitNeverClears, match="after waiting 80 s and asks to wait 40 s more, past --max-wait 100"):
        run_evaluation(asker(coach, pauses=pauses, max_wait=100), [question_set])
    assert pauses == [40.0, 40.0]


def test_a_stop_during_concurrent_cases_stops_them_all(question_set) -> None:
    coach = FakeCoach()
    remote = asker(coach)
    coach.script = [refusal(429, "rate_limited", retry_after="999999")] * 3
    many = type(question_set)(name="remote", description="d", path=question_set.path, cases=question_set.cases * 20)
    with pytest.raises(RunStopped):
        run_evaluation(remote, [many], concurrency=4)
    assert len(coach.requests) < 30  # the cases not yet started were never asked


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    later = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after("30", now) == 30.0 and retry_after(later, now) == 90.0
    assert retry_after(None) is None and retry_after("soon") is None and retry_after(" ") is None


# -- a case that fails, the run that goes on ------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (refusal(500, "internal_error"), "500 internal_error"),
        (refusal(413, "request_too_large"), "413 request_too_large"),
        (
            httpx.Response(200, content=b'event: error\ndata: {"error": "store_unavailable", "message": "x"}\n\n'),
            "error event: store_unavailable",
        ),
        (httpx.Response(200, content=b'event: delta\ndata: {"text": "hi"}\n\n'), "without an answer event"),
        (httpx.Response(200, content=b'event: answer\ndata: {"status": "great"}\n\n'), "not the coach's answer"),
    ],
    ids=["500", "413", "error-event", "no-answer", "not-an-answer"],
)
def test_a_bad_reply_crashes_its_case_and_the_run_goes_on(reply: httpx.Response, reason: str, question_set) -> None:
    coach = FakeCoach(script=[reply])
    run = run_evaluation(asker(coach), [question_set])
    assert run.results[0].metrics.crashed and reason in (run.results[0].metrics.error or "")
    assert run.results[1].passed


def test_a_stream_whose_pieces_are_not_the_answer_fails_its_case(question_set) -> None:
    coach = FakeCoach(pieces=lambda text: [text.removesuffix(DISCLAIMER_TAIL)])  # a proxy cut the stream's end
    run = run_evaluation(asker(coach), [question_set])
    assert all(r.metrics.crashed for r in run.results)
    assert "streamed pieces do not make up the answer" in (run.results[0].metrics.error or "")


DISCLAIMER_TAIL = "physical therapist."


def test_a_timeout_crashes_only_that_case(question_set) -> None:
    calls = []

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/api/chat" and len(calls) == 2:
            raise httpx.ReadTimeout("timed out", request=request)
        return FakeCoach().handle(request)

    connection = Connection(ServerOptions(URL, timeout=5), transport=httpx.MockTransport(slow), pause=Pauses())
    run = run_evaluation(remote_asker(connection, check_server(connection), Route.chat), [question_set])
    assert run.results[0].metrics.error == "ReplyError: POST /api/chat: no reply within 5 s (--timeout)"
    assert run.results[1].passed


# -- servers that can't be evaluated --------------------------------------------------------------------


def failing(error: type[httpx.HTTPError], cause: BaseException | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        try:
            raise error("boom", request=request) from cause
        except httpx.HTTPError as raised:
            if cause is not None:
                raised.__cause__ = cause
            raise

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("transport", "kind", "words"),
    [
        (failing(httpx.ConnectError), Unreachable, "Can't reach http://coach.test"),
        (failing(httpx.ConnectTimeout), Unreachable, "is the server running at that address"),
        (failing(httpx.ProxyError), Unreachable, "HTTPS_PROXY"),
        (failing(httpx.ConnectError, ssl.SSLCertVerificationError(1, "verify failed")), TlsFailure, "--cacert"),
        (failing(httpx.ConnectError, ssl.SSLError(1, "WRONG_VERSION_NUMBER")), TlsFailure, "speak HTTPS"),
        (failing(httpx.RemoteProtocolError), NotTheCoach, "not the knee-pain coach"),
    ],
    ids=["refused", "connect-timeout", "proxy", "untrusted-certificate", "not-tls", "not-http"],
)
def test_a_server_that_cannot_be_reached_stops_the_run_in_plain_words(transport, kind, words: str) -> None:
    connection = Connection(ServerOptions(URL), transport=transport, pause=Pauses())
    with pytest.raises(kind, match=words) as stopped:
        check_server(connection)
    assert "Traceback" not in str(stopped.value) and isinstance(stopped.value, RunStopped)


@pytest.mark.parametrize(
    ("health", "status", "kind", "words"),
    [
        ("<html>Welcome to nginx</html>", 200, NotTheCoach, r"GET /api/health answered 200 \(text/html\)"),
        ({"status": "ok"}, 200, NotTheCoach, "not the coach's health"),
        ({"detail": "Not Found"}, 404, NotTheCoach, "404"),
        ({"error": "unauthorized", "message": "token"}, 401, Refused, "401 unauthorized: token"),
    ],
    ids=["a-web-page", "another-service", "not-found", "needs-a-token"],
)
def test_a_server_that_is_not_the_coach_stops_the_run_saying_what_answered(health, status, kind, words) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(health, str):
            return httpx.Response(status, text=health, headers={"Content-Type": "text/html"})
        return httpx.Response(status, json=health)

    with pytest.raises(kind, match=words):
        check_server(Connection(ServerOptions(URL), transport=httpx.MockTransport(handler)))


def test_a_redirect_says_which_address_to_give() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "https://coach.test/api/health"})

    with pytest.raises(NotTheCoach, match=re.escape("redirects to https://coach.test/api/health: give that address")):
        check_server(Connection(ServerOptions(URL), transport=httpx.MockTransport(handler)))


@pytest.mark.parametrize(("status", "kind"), [(401, Refused), (403, Refused), (404, NotTheCoach)])
def test_a_route_that_refuses_the_suite_stops_the_run(status: int, kind: type, question_set) -> None:
    coach = FakeCoach(script=[refusal(status, "invalid_api_key", openai=True)])
    with pytest.raises(kind, match=str(status)):
        run_evaluation(asker(coach, Route.openai), [question_set])


def test_a_starting_server_is_polled_until_ready_and_one_that_never_is_stops_the_run() -> None:
    coach = FakeCoach(health={**HEALTH, "status": "starting", "ready": False}, health_status=503)
    clock = iter(range(0, 1000, 2))
    pauses = Pauses()
    with pytest.raises(
        LimitNeverClears, match=re.escape("not ready after 10 s (health: starting), past --max-wait 10")
    ):
        check_server(connect(coach, max_wait=10), clock=lambda: next(clock), pause=pauses)
    assert pauses == [1.0] * 4  # asked at 0, 2, 4, 6 and 8 s; at 10 s one more second is past --max-wait

    ready_later = FakeCoach(health={**HEALTH, "status": "starting", "ready": False}, health_status=503)

    def pause(seconds: float) -> None:
        ready_later.health, ready_later.health_status = dict(HEALTH), 200

    assert check_server(connect(ready_later), pause=pause).ready


def test_the_health_is_read_field_by_field_and_the_version_compared() -> None:
    health = ServerHealth.from_body(URL, {**HEALTH, "passages": "many", "extra": 1})
    assert health.passages is None and health.index_version == 7 and health.composer == "extractive"
    assert version_warning(health, local="0.1.0") is None
    assert "runs version 0.1.0+index.7, this checkout is 0.2.0" in (version_warning(health, local="0.2.0") or "")
    assert "does not report its version" in (version_warning(ServerHealth(URL, "ready", True)) or "")


# -- options ----------------------------------------------------------------------------------------------


def test_headers_are_name_colon_value_and_a_bad_one_never_shows_its_value() -> None:
    assert parse_header("Authorization:  Bearer abc ") == ("Authorization", "Bearer abc")
    for bad in ("Authorization Bearer s3cret-value", "Authorization:", ": s3cret-value", "Bad Name: s3cret-value"):
        with pytest.raises(ValueError, match="not 'Name: value'") as raised:
            parse_header(bad)
        assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"url": "localhost:7860"}, "is not an address"),
        ({"url": "ftp://coach.test"}, "is not an address"),
        ({"url": URL, "timeout": 0}, "--timeout"),
        ({"url": URL, "max_wait": -1}, "--max-wait"),
        ({"url": URL, "cacert": Path("/nonexistent/ca.pem")}, "no such file"),
    ],
)
def test_bad_options_fail_before_any_request(options, words: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=words):
        ServerOptions(**options)


def test_a_cacert_that_is_no_certificate_fails_before_any_request(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate", encoding="utf-8")
    with pytest.raises(ValueError, match="not a PEM file of certificates"):
        ServerOptions(URL, cacert=junk)


def test_the_address_keeps_its_path_prefix() -> None:
    seen: list[str] = []

    def behind_a_prefix(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=HEALTH)

    check_server(Connection(ServerOptions("http://coach.test/coach/"), transport=httpx.MockTransport(behind_a_prefix)))
    assert seen == ["http://coach.test/coach/api/health"]


# -- the whole run: reports, gate and header ---------------------------------------------------------------


def test_a_remote_run_writes_the_reports_with_the_servers_health_in_their_header(set_file: Path, tmp_path: Path):
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("every_set:\n  disclaimer: 1.0\n", encoding="utf-8")
    plan = plan_suite(Settings(), set_paths=[str(set_file)], thresholds=lenient, out=tmp_path / "out")
    pauses = Pauses()
    coach = FakeCoach(health={**HEALTH, "version": "9.9.9+index.7"},
                      script=[refusal(429, "rate_limited", retry_after="4")])  # fmt: skip
    warnings: list[str] = []
    connection = connect(coach, pauses)
    result = run_remote(plan, connection.options, Route.stream, concurrency=2, warn=warnings.append,
                        connection=connection)  # fmt: skip
    assert result.passed and pauses == [4.0] and "runs version 9.9.9+index.7" in warnings[0]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    server = summary["info"]["server"]
    assert server["url"] == URL and server["route"] == "POST /api/chat/stream" and server["concurrency"] == 2
    assert server["health"]["index_version"] == 7 and server["waits"]["count"] == 1
    assert summary["info"]["composer"] == "extractive" and "top_k" not in summary["info"]
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert f"- Server {URL} via POST /api/chat/stream, 2 at a time." in markdown
    assert "version 9.9.9+index.7, index_version 7, passages 36" in markdown
    assert "Waited on Retry-After 1 times, 4 s in all (429 rate_limited ×1)." in markdown
    assert "the server's engine by its own timings_ms: p50 5 ms" in markdown
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Its /api/health: status ready" in html and ", engine 5 ms)" in html
    junit = (tmp_path / "out" / "junit.xml").read_text(encoding="utf-8")
    assert f'<property name="server.url" value="{URL}" />' in junit
    record = json.loads((tmp_path / "out" / "results.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert record["metrics"]["server_ms"] == 5.0 and record["metrics"]["latency_ms"] > 0
    assert QUOTE in record["answer"]["answer"]
