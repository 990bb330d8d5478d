"""The gate: what asks or rates is counted once, in front of every route, by what it does (``bot.server.gate``)."""

from __future__ import annotations

import pytest

from bot.server.gate import Kind, api_kind, under
from tests.server.test_answering import QUESTION


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", "/api/chat", Kind.ask),
        ("POST", "/api/chat/stream", Kind.ask),
        ("POST", "/v1/chat/completions", Kind.keyed),  # per key and end user, by its route
        ("POST", "/api/anything-new", Kind.ask),  # a route added later is counted without a change here
        ("POST", "/api/feedback", Kind.rate),
        ("POST", "/api/feedback/", Kind.rate),
        ("POST", "/api/feedbackx", Kind.ask),  # not under /api/feedback
        ("GET", "/api/health", Kind.free),
        ("GET", "/v1/models", Kind.free),
        ("POST", "/gradio_api/queue/join", None),  # the page's events are looked up by what they call
        ("GET", "/", None),
    ],
)
def test_a_request_is_counted_by_what_it_does(method: str, path: str, kind: Kind | None) -> None:
    assert api_kind(method, path) == kind


def test_under_means_the_path_or_below_it() -> None:
    assert under("/v1", ["/v1/"]) and under("/v1/x", ["/v1/"]) and not under("/v10", ["/v1/"])


def test_a_question_is_counted_once_though_the_route_asks_for_admission_too(serve) -> None:
    with serve(rate_limit="2/minute") as served:
        codes = [served.client.post("/api/chat", json={"message": QUESTION}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_request_refused_by_the_gate_never_reaches_the_engine(serve) -> None:
    with serve(rate_limit="1/minute") as served:
        served.client.post("/api/chat", json={"message": QUESTION})
        refused = served.client.post("/api/chat/stream", json={"message": QUESTION})
    assert refused.status_code == 429 and [q for q, _ in served.engine.asked] == [QUESTION]


def test_malformed_requests_count_too(serve) -> None:
    with serve(rate_limit="2/minute") as served:
        for _ in range(2):
            served.client.post("/api/chat", content=b"{not json", headers={"Content-Type": "application/json"})
        refused = served.client.post("/api/chat", json={"message": QUESTION})
    assert refused.status_code == 429
