"""The chat page's handlers over ``FakeEngine``: called as Gradio calls them, then through a real Gradio client.

How the page looks and behaves in a browser, over the real engine, is ``test_browser.py``.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Iterator
from typing import Any

import gradio as gr
import httpx
import pytest

from bot import policy
from bot.server.app import create_app
from bot.server.page import Conversation, Handlers
from bot.server.ratelimit import RateLimiter
from bot.settings import Settings
from tests.conftest import ThreadedServer, free_port
from tests.fakes import FakeEngine, canned_answer
from tests.server.conftest import Served, closed_port_url
from tests.server.test_answering import QUESTION, page_request, too_fast


def respond(served: Served, convo: Conversation, question: str) -> list[Any]:
    """Every update ``respond`` sends to the page for ``question``, its chat as it was when sent."""

    async def run() -> list[Any]:
        updates = []
        async for chat, *rest in Handlers(served.services).respond(question, convo, page_request()):
            updates.append((copy.deepcopy(chat), *rest))
        return updates

    updates: list[Any] = served.call(run)
    return updates


def liked(message_index: int, *, up: bool = True) -> Any:
    return gr.LikeData(None, {"index": message_index, "value": "", "liked": up})


def test_the_question_shows_at_once_then_the_reply_in_pieces_then_the_answer_and_its_sources(served: Served) -> None:
    convo = Conversation()
    updates = respond(served, convo, QUESTION)
    first, pending, final = updates[0], updates[1:-1], updates[-1]
    assert first[1] == "" and 'class="question-text"' in first[0][0]["content"]  # the box is cleared
    assert pending and all("reply--pending" in update[0][-1]["content"] for update in pending)
    chat, _question, _convo, sources = final
    assert 'data-status="answered"' in chat[-1]["content"] and 'href="#src-1-1"' in chat[-1]["content"]
    assert 'id="src-1-1"' in sources and [a.question for a in convo.answers if a] == [QUESTION]


def test_an_empty_question_changes_nothing(served: Served) -> None:
    convo = Conversation()
    [update] = respond(served, convo, "   ")
    assert convo.messages == [] and served.engine.asked == [] and len(update) == 4


def test_a_follow_up_is_asked_with_the_conversation_so_far_without_the_pages_notices(served: Served) -> None:
    convo = Conversation()
    respond(served, convo, QUESTION)
    served.services.limiter = RateLimiter("0/minute", daily_cap_per_origin=0)  # a refusal in between …
    [refused] = respond(served, convo, "and why?")
    served.services.limiter = RateLimiter("100/minute", daily_cap_per_origin=0)
    assert "reply--notice" in refused[0][-1]["content"] and len(convo.messages) == 2  # … shown, but not kept
    respond(served, convo, "and how wide?")
    [answer, _last] = convo.answers
    assert answer is not None
    assert served.engine.asked[-1] == ("and how wide?", [{"role": "user", "content": QUESTION},
                                                         {"role": "assistant", "content": answer.answer}])  # fmt: skip


def test_a_question_longer_than_the_box_allows_is_not_kept_whole(served: Served) -> None:
    convo = Conversation()
    respond(served, convo, "knee " * 100_000)  # what a client other than the page could send
    [(question, _history)] = served.engine.asked
    assert len(question) == served.services.settings.max_question_chars + 1  # still "too long" for the engine
    assert sum(len(message["content"]) for message in convo.messages) < 10_000


def test_unreadable_text_is_answered_invalid_on_the_page(served: Served) -> None:
    convo = Conversation()
    respond(served, convo, "knee \ud800 pain")
    [answer] = convo.answers
    assert answer is not None and answer.status == "invalid" and answer.reason == "unreadable"
    assert "\ufffd" in answer.question and served.engine.asked == []


def test_a_rating_is_stored_from_the_page_and_opens_the_comment_box(served: Served) -> None:
    convo, handlers = Conversation(), Handlers(served.services)
    respond(served, convo, QUESTION)
    box, comment, note, _convo = handlers.rate(convo, liked(1, up=False), page_request())
    assert box["visible"] is True and policy.RATING_THANKS["down"] in comment["label"]
    assert note == policy.rating_saved(1)
    assert handlers.add_comment("too vague", convo, page_request())[2] == policy.COMMENT_SAVED
    store = served.services.store
    assert store is not None
    [row] = store.rows()
    assert (row.rating, row.comment, row.channel, row.question) == (-1, "too vague", "page", QUESTION)
    assert row.engine_version == served.engine.version


def test_only_the_engines_answers_can_be_rated(served: Served) -> None:
    convo, handlers = Conversation(), Handlers(served.services)
    served.services.limiter = RateLimiter("0/minute", daily_cap_per_origin=0)
    respond(served, convo, QUESTION)  # the reply is the page's own notice
    skipped = handlers.rate(convo, liked(1), page_request())
    assert all(isinstance(update, type(gr.skip())) for update in skipped[:3])
    assert served.services.store is not None and served.services.store.rows() == []


def test_a_rating_that_cannot_be_stored_is_said_so_and_the_page_goes_on(served: Served, fake_settings) -> None:
    convo, handlers = Conversation(), Handlers(served.services)
    respond(served, convo, QUESTION)
    with sqlite3.connect(fake_settings.data_dir / "feedback.sqlite3") as db:  # broken from outside
        db.execute("ALTER TABLE feedback RENAME TO feedback_broken")
    assert handlers.rate(convo, liked(1), page_request())[2] == policy.PAGE_RATING_FAILED
    assert respond(served, convo, "and why?")[-1][2].answers[-1] is not None  # answers are unaffected


# -- the page's own API through a Gradio client, over a real uvicorn on loopback ------------------------


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadedServer, Any]]:
    """The whole app, page included, over ``FakeEngine``; its store settings name a Chroma server that is down."""
    folder = tmp_path_factory.mktemp("page-server")
    settings = Settings(index_dir=folder / "index", data_dir=folder / "data", chroma_url=closed_port_url())
    app = create_app(settings, engine=FakeEngine())
    # Gradio clients' heartbeat requests end only at the server's next ping (15 s): don't wait for them.
    with ThreadedServer(app, free_port(), timeout_graceful_shutdown=1) as server:
        server.wait_for_page()
        yield server, app.state.services


@pytest.fixture
def page_client(page_server) -> Iterator[tuple[Any, Any]]:
    from gradio_client import Client

    server, services = page_server
    services.limiter = RateLimiter("1000/minute", daily_cap_per_origin=0)
    services.engine.fail = None
    client = Client(server.url + "/", verbose=False, download_files=False)
    yield client, services
    client.close()  # its heartbeat connection would keep the server from stopping
    services.engine.fail = None


@pytest.mark.slow
def test_the_page_api_answers_through_the_request_policy(page_client) -> None:
    client, services = page_client
    answer = client.predict(QUESTION, [], api_name="/ask")
    assert answer["status"] == "answered" and answer["answer"].endswith(policy.DISCLAIMER)
    assert services.engine.asked[-1] == (QUESTION, [])


@pytest.mark.slow
def test_the_page_api_tells_a_client_over_its_limit_to_wait(page_client) -> None:
    client, services = page_client
    services.limiter = RateLimiter("1/minute", daily_cap_per_origin=0)
    client.predict(QUESTION, [], api_name="/ask")
    with pytest.raises(httpx.HTTPStatusError) as refused:  # refused by the gate, before Gradio's queue
        client.predict(QUESTION, [], api_name="/ask")
    response = refused.value.response
    assert response.status_code == 429 and too_fast(response.json()["message"]) is not None
    assert response.json()["detail"] == response.json()["message"]  # what Gradio's own client shows


@pytest.mark.slow
def test_the_page_api_gives_answers_a_rating_can_name(page_client) -> None:
    client, services = page_client
    answer = client.predict(QUESTION, [], api_name="/ask")
    assert services.signer.verify(canned_answer(QUESTION), [], answer["answer_id"])


@pytest.mark.slow
def test_the_page_api_says_when_the_articles_cant_be_reached(page_client) -> None:
    from gradio_client.exceptions import AppError

    client, services = page_client
    services.engine.fail = httpx.ConnectError("connection refused")
    with pytest.raises(AppError) as refused:
        client.predict(QUESTION, [], api_name="/ask")
    assert refused.value.message == policy.STORE_UNAVAILABLE
