"""The chat page's own API, as a Gradio client sees it."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_page_api_answers_with_the_ask_contract(live_server) -> None:
    from gradio_client import Client

    client = Client(live_server.url + "/", verbose=False, download_files=False)
    assert "/ask" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    answer = client.predict("Where should my feet go on the leg press?", [], api_name="/ask")
    assert answer["status"] == "answered" and answer["citations"] and answer["answer"].endswith(answer["disclaimer"])
    history = [{"role": "user", "content": "Is it ok to lock my knees at the top?"},
               {"role": "assistant", "content": answer["answer"]}]  # fmt: skip
    follow_up = client.predict("why not?", history, api_name="/ask")
    assert follow_up["status"] == "answered" and "strain" in follow_up["answer"]


def test_answers_given_on_the_page_are_counted_in_the_metrics(live_server) -> None:
    import httpx
    from gradio_client import Client
    from prometheus_client.parser import text_string_to_metric_families

    def answered() -> float:
        text = httpx.get(live_server.url + "/api/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "bot_answers_total" and sample.labels.get("status") == "answered"
        )

    before = answered()
    client = Client(live_server.url + "/", verbose=False, download_files=False)
    client.predict("Do knee sleeves help on the leg press?", [], api_name="/ask")
    assert answered() == before + 1
