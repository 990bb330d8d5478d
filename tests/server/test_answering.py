"""One request policy: every way in to an answer refuses, waits and fails the same way (``bot.server.answering``).

The ways in: ``POST /api/chat``, ``POST /api/chat/stream``, the OpenAI-compatible ``POST /v1/chat/completions``
(whole and streamed), and the chat page's two, its ``respond`` handler (the chat box) and its ``ask`` endpoint
(``gr.api``), called here as Gradio calls them, in the app's event loop. All over ``FakeEngine``: no model, no
Chroma.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.requests import Request

from bot import policy
from bot.server import answering
from tests.server.conftest import Served, closed_port_url

QUESTION = "Where should my feet go on the leg press?"


@dataclass
class Told:
    """What the person was told; on the API also the HTTP status, ``Retry-After`` and disclaimer."""

    message: str
    answered: bool = False
    status: int | None = None  # None: on the page
    retry_after: str | None = None
    disclaimer: str | None = None


def sse_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def _refused(response: httpx.Response) -> Told:
    body = response.json()
    return Told(body["message"], status=response.status_code, retry_after=response.headers.get("retry-after"),
                disclaimer=body.get("disclaimer"))  # fmt: skip


def via_chat(served: Served, question: str = QUESTION) -> Told:
    response = served.client.post("/api/chat", json={"message": question})
    if response.status_code != 200:
        return _refused(response)
    return Told(response.json()["answer"], answered=True, status=200)


def via_stream(served: Served, question: str = QUESTION) -> Told:
    response = served.client.post("/api/chat/stream", json={"message": question})
    if response.status_code != 200:
        return _refused(response)
    kind, data = sse_events(response.text)[-1]
    if kind == "answer":
        return Told(data["answer"], answered=True, status=200)
    assert kind == "error"  # after the response started: the error's body as the last event
    return Told(data["message"], status=200, disclaimer=data.get("disclaimer"))


def openai_events(body: str) -> list[Any]:
    """The ``data`` of each event of a ``/v1`` stream: chunks (and errors) as dicts, then ``"[DONE]"``."""
    found = []
    for block in body.strip().split("\n\n"):
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        found.append(data if data == "[DONE]" else json.loads(data))
    return found


def openai_text(events: list[Any]) -> str:
    """The reply a stream's chunks spell out."""
    return "".join(c["delta"].get("content") or "" for e in events if isinstance(e, dict) for c in e.get("choices", []))


def openai_request(question: str, **more: Any) -> dict[str, Any]:
    return {"model": policy.MODEL_ID, "messages": [{"role": "user", "content": question}], **more}


def _refused_openai(response: httpx.Response) -> Told:
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}, error
    return Told(error["message"], status=response.status_code, retry_after=response.headers.get("retry-after"),
                disclaimer=error.get("disclaimer"))  # fmt: skip


def via_openai(served: Served, question: str = QUESTION) -> Told:
    response = served.client.post("/v1/chat/completions", json=openai_request(question))
    if response.status_code != 200:
        return _refused_openai(response)
    return Told(response.json()["choices"][0]["message"]["content"], answered=True, status=200)


def via_openai_stream(served: Served, question: str = QUESTION) -> Told:
    response = served.client.post("/v1/chat/completions", json=openai_request(question, stream=True))
    if response.status_code != 200:
        return _refused_openai(response)
    events = openai_events(response.text)
    assert events[-1] == "[DONE]"
    if "error" in events[-2]:  # after the response started: the error's body as the last event
        error = events[-2]["error"]
        return Told(error["message"], status=200, disclaimer=error.get("disclaimer"))
    return Told(openai_text(events), answered=True, status=200)


def page_request() -> Any:
    import gradio as gr

    return gr.Request(client={"host": "testclient", "port": 50000})  # as Gradio's queue hands it over


def via_page(served: Served, question: str = QUESTION) -> Told:
    from bot.server.page import Conversation, Handlers

    convo = Conversation()

    async def respond() -> list[Any]:
        return [update async for update in Handlers(served.services).respond(question, convo, page_request())]

    chat = served.call(respond)[-1][0]
    if convo.answers and convo.answers[0] is not None:
        return Told(convo.answers[0].answer, answered=True)
    notice = re.fullmatch(r'<div class="reply reply--notice"><p>(.*)</p></div>', chat[-1]["content"])
    assert notice is not None, chat[-1]
    return Told(html.unescape(notice.group(1)))


def via_page_api(served: Served, question: str = QUESTION) -> Told:
    import gradio as gr

    from bot.server.page import Handlers

    async def ask() -> dict[str, Any]:
        return await Handlers(served.services).ask(question, [], page_request())

    try:
        answer = served.call(ask)
    except gr.Error as error:
        return Told(error.message)
    return Told(answer["answer"], answered=True)


WAYS_IN = pytest.mark.parametrize(
    "ask",
    [via_chat, via_stream, via_openai, via_openai_stream, via_page, via_page_api],
    ids=["api-chat", "api-stream", "openai", "openai-stream", "page", "page-ask"],
)


def too_fast(message: str) -> int | None:
    """The wait ``policy.too_fast`` names in ``message``, or None if it isn't that message."""
    pattern = re.escape(policy.too_fast(999)).replace("999", r"(\d+)")
    found = re.fullmatch(pattern, message)
    return int(found.group(1)) if found else None


# -- refusals --------------------------------------------------------------------------------------


@WAYS_IN
def test_a_store_lost_while_answering_is_told_the_same_everywhere(serve, ask: Callable[..., Told]) -> None:
    with serve(chroma_url=closed_port_url()) as served:
        served.engine.fail = httpx.ConnectError("connection refused")
        told = ask(served)
        health = served.client.get("/api/health")
    assert told.message == policy.STORE_UNAVAILABLE and not told.answered
    if ask in (via_chat, via_openai):
        assert (told.status, told.retry_after, told.disclaimer) == (503, "10", policy.DISCLAIMER)
    if ask in (via_stream, via_openai_stream):  # the response had started: the same body as the last event
        assert (told.status, told.disclaimer) == (200, policy.DISCLAIMER)
    assert health.status_code == 503 and health.json()["status"] == "store_unavailable"


@WAYS_IN
def test_a_store_down_since_start_up_is_told_the_same_everywhere(serve, ask: Callable[..., Told]) -> None:
    with serve(chroma_url=closed_port_url()) as served:
        served.services.engine = None  # as when the Chroma server was unreachable at start-up
        served.services.store_failed()
        told = ask(served)
    assert told.message == policy.STORE_UNAVAILABLE and served.engine.asked == []
    if told.status is not None:  # both API routes: refused before any response starts
        assert (told.status, told.retry_after, told.disclaimer) == (503, "10", policy.DISCLAIMER)


@WAYS_IN
def test_a_client_over_its_rate_limit_is_told_the_same_everywhere(serve, ask: Callable[..., Told]) -> None:
    with serve(rate_limit="1/minute") as served:
        served.services.limiter.hit("testclient")  # the client's one question this minute
        told = ask(served)
    wait = too_fast(told.message)
    assert wait is not None and 1 <= wait <= 60 and served.engine.asked == []
    if told.status is not None:
        assert (told.status, told.retry_after) == (429, str(wait))


@WAYS_IN
def test_before_the_engine_is_loaded_everyone_is_told_it_is_starting(serve, ask: Callable[..., Told]) -> None:
    with serve() as served:
        served.services.engine = None
        told = ask(served)
    assert told.message == policy.NOT_READY
    if told.status is not None:
        assert (told.status, told.retry_after, told.disclaimer) == (503, "5", policy.DISCLAIMER)


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/stream", "/v1/chat/completions"])
def test_an_embedding_sites_daily_cap_counts_questions_every_way(serve, path: str) -> None:
    origin = {"Origin": "https://gym.example"}
    with serve(daily_cap_per_origin=30) as served:  # one client may use a tenth of it: 3
        served.client.post("/api/chat", json={"message": QUESTION}, headers=origin)
        served.client.post("/api/chat/stream", json={"message": QUESTION}, headers=origin)
        served.client.post("/v1/chat/completions", json=openai_request(QUESTION), headers=origin)
        body = openai_request(QUESTION) if path.startswith("/v1/") else {"message": QUESTION}
        refused = served.client.post(path, json=body, headers=origin)
        own = served.client.post(path, json=body)  # not from the site: its own limit only
    assert refused.status_code == 429 and refused.headers["access-control-allow-origin"] == origin["Origin"]
    error = refused.json()
    assert (error["error"]["message"] if path.startswith("/v1/") else error["message"]) == policy.SITE_SHARE_REACHED
    assert own.status_code == 200


# -- answer slots -----------------------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.01)


@WAYS_IN
def test_every_way_in_waits_its_turn_while_the_answer_slots_are_busy(serve, ask: Callable[..., Told]) -> None:
    with serve(worker_threads=1) as served, ThreadPoolExecutor(1) as pool:
        slots, busy = served.services.slots, object()
        served.call(slots.acquire_on_behalf_of, busy)  # the one slot, taken by someone else's answer
        try:
            asked = pool.submit(ask, served)
            time.sleep(0.3)
            assert served.engine.asked == [] and not asked.done()
        finally:
            served.call(slots.release_on_behalf_of, busy)
        assert asked.result(timeout=10).answered


@pytest.mark.parametrize(
    "stream", [via_stream, via_openai_stream, via_page], ids=["api-stream", "openai-stream", "page"]
)
def test_a_stream_holds_its_answer_slot_until_its_answer_is_complete(serve, stream: Callable[..., Told]) -> None:
    with serve(worker_threads=1) as served, ThreadPoolExecutor(2) as pool:
        served.engine.hold.clear()  # the stream stops after its first piece
        try:
            streaming = pool.submit(stream, served, "first")
            wait_until(lambda: served.engine.questions() == ["first"])
            other = pool.submit(via_chat, served, "second")
            time.sleep(0.3)
            assert served.engine.questions() == ["first"]  # the question waits for the stream's slot
        finally:
            served.engine.hold.set()
        assert streaming.result(timeout=10).answered and other.result(timeout=10).answered
        assert served.engine.questions() == ["first", "second"] and served.services.slots.borrowed_tokens == 0


def test_a_stream_read_only_in_part_gives_its_slot_back(served: Served) -> None:
    async def read_the_first_piece() -> tuple[Any, float, float]:
        loaded = served.services.loaded()
        async with aclosing(answering.stream(served.services, loaded, QUESTION, [])) as pieces:
            first = await anext(pieces)
            held = loaded.slots.borrowed_tokens
        return first, held, loaded.slots.borrowed_tokens

    first, held, after = served.call(read_the_first_piece)
    assert isinstance(first, str) and (held, after) == (1, 0)


# -- what every answer leaves behind ------------------------------------------------------------------


@WAYS_IN
def test_every_answer_is_counted_in_the_metrics_whichever_way_it_came(serve, ask: Callable[..., Told]) -> None:
    def answered() -> float:
        return REGISTRY.get_sample_value("bot_answers_total", {"status": "answered"}) or 0.0

    with serve() as served:
        before = answered()
        assert ask(served).answered
        assert answered() == before + 1


@WAYS_IN
def test_every_way_in_passes_the_question_to_the_engine_as_asked(serve, ask: Callable[..., Told]) -> None:
    with serve() as served:
        ask(served, "Is it bad to lock my knees?")
    assert served.engine.asked == [("Is it bad to lock my knees?", [])]


def _starlette_request(client: tuple[str, int] | None) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "client": client})


@pytest.mark.parametrize(
    ("request_", "address"),
    [
        (lambda: _starlette_request(("10.1.2.3", 5000)), "10.1.2.3"),  # the API's requests
        (lambda: _starlette_request(None), "unknown"),  # a transport that names no client
        (page_request, "testclient"),  # the page's, as Gradio's queue passes them on
        (lambda: None, "unknown"),  # Gradio calls without a request
    ],
)
def test_the_client_address_is_read_the_same_from_either_kind_of_request(request_, address: str) -> None:
    assert answering.client_address(request_()) == address
