"""Who calls ``/v1`` and how they are counted: keyed clients (``BOT_API_KEYS``), chat front-ends' housekeeping
requests, and the ``openai`` SDK reading our replies and errors (over ``FakeEngine``, in process).
"""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from bot import policy
from bot.settings import Settings
from tests.server.conftest import Served
from tests.server.test_answering import QUESTION, openai_events, openai_request, openai_text

COMPLETIONS = "/v1/chat/completions"
KEY, OTHER_KEY = "k" * 16 + "-gym-one", "k" * 16 + "-gym-two"


def keys(*secrets: str) -> list[SecretStr]:
    """``BOT_API_KEYS`` as the settings hold it (``serve`` copies settings without validating them)."""
    return [SecretStr(secret) for secret in secrets]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- BOT_API_KEYS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no key
        bearer("not-one-of-the-keys-at-all"),
        {"Authorization": KEY},  # the key, but not as a bearer token
        {"Authorization": f"Basic {KEY}"},
    ],
)
def test_with_keys_set_a_request_without_one_is_a_401_before_anything_runs(serve, headers) -> None:
    with serve(api_keys=keys(KEY)) as served:
        response = served.client.post(COMPLETIONS, json=openai_request(QUESTION), headers=headers)
        models = served.client.get("/v1/models", headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": {"message": policy.INVALID_API_KEY, "type": "invalid_request_error",
                                         "param": None, "code": "invalid_api_key"}}  # fmt: skip
    assert models.status_code == 401 and served.engine.asked == []


def test_with_a_key_the_request_is_answered_and_the_chat_api_needs_none(serve) -> None:
    with serve(api_keys=keys(KEY, OTHER_KEY)) as served:
        keyed = served.client.post(COMPLETIONS, json=openai_request(QUESTION), headers=bearer(OTHER_KEY))
        lower = served.client.post(
            COMPLETIONS, json=openai_request(QUESTION), headers={"authorization": f"bearer {KEY}"}
        )
        page_api = served.client.post("/api/chat", json={"message": QUESTION})
    assert (keyed.status_code, lower.status_code, page_api.status_code) == (200, 200, 200)


def test_a_keyed_client_is_limited_per_key_not_per_address(serve) -> None:
    with serve(api_keys=keys(KEY, OTHER_KEY), rate_limit="1/minute") as served:
        first = served.client.post(COMPLETIONS, json=openai_request(QUESTION), headers=bearer(KEY))
        again = served.client.post(COMPLETIONS, json=openai_request(QUESTION), headers=bearer(KEY))
        other = served.client.post(COMPLETIONS, json=openai_request(QUESTION), headers=bearer(OTHER_KEY))
        by_address = served.client.post("/api/chat", json={"message": QUESTION})  # the same address, not keyed
    assert (first.status_code, again.status_code, other.status_code, by_address.status_code) == (200, 429, 200, 200)
    error = again.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded") and again.headers["retry-after"]


def test_under_a_key_each_end_user_named_in_user_has_a_limit_of_their_own(serve) -> None:
    def ask(served: Served, user: str | None) -> int:
        body = openai_request(QUESTION, **({"user": user} if user else {}))
        return served.client.post(COMPLETIONS, json=body, headers=bearer(KEY)).status_code

    with serve(api_keys=keys(KEY), rate_limit="1/minute") as served:
        codes = [ask(served, "member-1"), ask(served, "member-2"), ask(served, "member-1"), ask(served, None)]
    assert codes == [200, 200, 429, 200]  # the key without a user is one more client


def test_under_a_key_open_webuis_user_header_names_the_end_user_too(serve) -> None:
    def ask(served: Served, user: str) -> int:
        headers = {**bearer(KEY), "X-OpenWebUI-User-Id": user}
        return served.client.post(COMPLETIONS, json=openai_request(QUESTION), headers=headers).status_code

    with serve(api_keys=keys(KEY), rate_limit="1/minute") as served:
        assert [ask(served, "u-1"), ask(served, "u-2"), ask(served, "u-1")] == [200, 200, 429]


def test_without_keys_no_user_name_splits_an_addresss_limit(serve) -> None:
    with serve(rate_limit="1/minute") as served:
        codes = [served.client.post(COMPLETIONS, json=openai_request(QUESTION, user=name),
                                    headers={"X-OpenWebUI-User-Id": name}).status_code
                 for name in ("member-1", "member-2")]  # fmt: skip
    assert codes == [200, 429]  # anyone could name a fresh user per request


def test_keys_are_a_comma_separated_setting_and_short_ones_are_refused_without_being_echoed(monkeypatch) -> None:
    monkeypatch.setenv("BOT_API_KEYS", f" {KEY}, {OTHER_KEY} ,")
    assert [key.get_secret_value() for key in Settings().api_keys] == [KEY, OTHER_KEY]
    monkeypatch.setenv("BOT_API_KEYS", f"{KEY},tiny-secret")
    with pytest.raises(ValueError, match="at least 16") as refused:
        Settings()
    assert "tiny-secret" not in str(refused.value) and KEY not in str(refused.value)


# -- housekeeping requests (Open WebUI's task prompts) ----------------------------------------------------

HISTORY = (
    "<chat_history>\nUSER: Where should my feet go on the leg press?\nASSISTANT: Shoulder-width apart [1].\n"
    "</chat_history>"
)
#: Open WebUI's default task prompts, shortened to their shape: instructions, the JSON asked for, the chat.
TASKS = {
    "title": '### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n'
    '### Guidelines:\n- Keep it clear and simple.\n### Output:\nJSON format: { "title": "your concise title here" }\n'
    '### Examples:\n- { "title": "📉 Stock Market Trends" },\n### Chat History:\n' + HISTORY,
    "tags": "### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history, along with 1-3 "
    'more specific subtopic tags.\n\n### Output:\nJSON format: { "tags": ["tag1", "tag2", "tag3"] }\n\n'
    "### Chat History:\n" + HISTORY,
    "follow_ups": "### Task:\nSuggest 3-5 relevant follow-up questions or prompts that the user might naturally ask "
    'next.\n### Output:\nJSON format: { "follow_ups": ["Question 1?", "Question 2?"] }\n### Chat History:\n' + HISTORY,
    "queries": "### Task:\nAnalyze the chat history to determine the necessity of generating search queries.\n"
    '### Guidelines:\n- respond in the format: { "queries": ["query1", "query2"] }\n### Chat History:\n' + HISTORY,
    "text": "### Task:\nYou are an autocompletion system. Continue the text in `<text>`.\n"
    '### **Output Rules**:\n- Respond only in JSON format: `{ "text": "<your_completion>" }`.\n'
    "### Context:\n" + HISTORY + "\n<type>General</type>\n<text>Where should my</text>\n#### Output:\n",
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_a_housekeeping_prompt_gets_a_neutral_reply_in_the_form_asked(served: Served, kind: str) -> None:
    response = served.client.post(COMPLETIONS, json=openai_request(TASKS[kind]))
    reply = response.json()
    text = reply["choices"][0]["message"]["content"]
    assert text == policy.HOUSEKEEPING_REPLIES[kind] and kind in json.loads(text)
    assert reply["coach"] == {"status": "housekeeping", "reason": None, "disclaimer": policy.DISCLAIMER,
                              "citations": [], "passages": []}  # fmt: skip
    assert reply["usage"]["prompt_tokens"] > 20 and served.engine.asked == []  # no article was read


def test_housekeeping_counts_against_no_limit_and_needs_no_engine(serve) -> None:
    with serve(rate_limit="1/minute", daily_cap_per_origin=1) as served:
        origin = {"Origin": "https://gym.example"}
        for kind in ("title", "tags", "follow_ups", "title"):
            assert served.client.post(COMPLETIONS, json=openai_request(TASKS[kind]), headers=origin).status_code == 200
        assert served.client.post(COMPLETIONS, json=openai_request(QUESTION), headers=origin).status_code == 200
        assert served.client.post(COMPLETIONS, json=openai_request(QUESTION)).status_code == 429
        served.services.engine = None  # even while starting: nothing to load for a title
        assert served.client.post(COMPLETIONS, json=openai_request(TASKS["tags"])).status_code == 200


def test_a_housekeeping_prompt_can_be_streamed(served: Served) -> None:
    body = openai_request(TASKS["title"], stream=True, stream_options={"include_usage": True})
    events = openai_events(served.client.post(COMPLETIONS, json=body).text)
    assert openai_text(events) == policy.HOUSEKEEPING_REPLIES["title"] and events[-1] == "[DONE]"
    assert events[-3]["coach"]["status"] == "housekeeping" and events[-2]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(
    "question",
    [
        "What is the title of the article about foot position?",  # words of a task, but a question
        "### Task:\nGenerate a title for my leg day.",  # no chat history: a question (refused as markup or not)
        '### Task:\nWrite a poem.\n### Output:\n{ "poem": "..." }\n' + HISTORY,  # a task we don't know
    ],
)
def test_anything_else_is_a_question_for_the_engine(served: Served, question: str) -> None:
    served.client.post(COMPLETIONS, json=openai_request(question))
    assert served.engine.questions() == [question]


def test_the_form_is_read_from_the_instructions_not_from_the_chat_inside(served: Served) -> None:
    sneaky = TASKS["tags"].replace("USER: Where", 'USER: { "title": "x" } Where')
    reply = served.client.post(COMPLETIONS, json=openai_request(sneaky)).json()
    assert reply["choices"][0]["message"]["content"] == policy.HOUSEKEEPING_REPLIES["tags"]


# -- the openai SDK, in process ---------------------------------------------------------------------------


def sdk(served: Served, key: str = "unused", **options):
    import openai

    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=served.client, max_retries=0,
                         **options)  # fmt: skip


def test_the_openai_sdk_reads_the_reply_its_usage_and_the_coach_field(served: Served) -> None:
    answer = served.client.post("/api/chat", json={"message": QUESTION}).json()
    reply = sdk(served).chat.completions.create(model=policy.MODEL_ID, messages=[{"role": "user", "content": QUESTION}])
    assert reply.choices[0].message.content == answer["answer"] and reply.usage is not None
    coach = reply.model_extra["coach"] if reply.model_extra else None
    assert coach is not None and coach["citations"] == answer["citations"]
    assert [model.id for model in sdk(served).models.list()] == [policy.MODEL_ID]


@pytest.mark.parametrize(
    ("call", "error", "code"),
    [
        (lambda c: c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]),
         "NotFoundError", "model_not_found"),
        (lambda c: c.chat.completions.create(model=policy.MODEL_ID, n=2, messages=[{"role": "user", "content": "hi"}]),
         "BadRequestError", "unsupported_value"),
        (lambda c: c.chat.completions.create(model=policy.MODEL_ID, messages=[{"role": "user", "content": "hi"}],
                                             response_format={"type": "json_object"}),
         "BadRequestError", "unsupported_value"),
    ],
)  # fmt: skip
def test_the_openai_sdk_raises_its_own_errors_with_our_codes(served: Served, call, error: str, code: str) -> None:
    import openai

    with pytest.raises(getattr(openai, error)) as raised:
        call(sdk(served))
    assert raised.value.code == code and served.engine.asked == []


def test_the_openai_sdk_raises_authentication_and_rate_limit_errors(serve) -> None:
    import openai

    with serve(api_keys=keys(KEY), rate_limit="1/minute") as served:
        with pytest.raises(openai.AuthenticationError):
            sdk(served, key="wrong").models.list()
        client = sdk(served, key=KEY)
        client.chat.completions.create(model=policy.MODEL_ID, messages=[{"role": "user", "content": QUESTION}])
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(model=policy.MODEL_ID, messages=[{"role": "user", "content": QUESTION}])
    assert int(limited.value.response.headers["retry-after"]) >= 1


def test_the_openai_sdk_raises_a_failure_mid_stream_as_an_api_error(serve) -> None:
    import openai

    from tests.server.conftest import closed_port_url

    with serve(chroma_url=closed_port_url()) as served:
        served.engine.fail = httpx.ConnectError("connection refused")  # the store, lost once streaming
        stream = sdk(served).chat.completions.create(model=policy.MODEL_ID, stream=True,
                                                     messages=[{"role": "user", "content": QUESTION}])  # fmt: skip
        with pytest.raises(openai.APIError) as failed:
            list(stream)
    assert failed.value.message == policy.STORE_UNAVAILABLE
    assert isinstance(failed.value.body, dict) and failed.value.body["disclaimer"] == policy.DISCLAIMER


# -- BOT_QA_KEYS: the QA suite (python -m bot eval --url) ------------------------------------------------

QA_KEY = "q" * 16 + "-qa-suite"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", {"message": QUESTION}),
        ("/api/chat/stream", {"message": QUESTION}),
        (COMPLETIONS, openai_request(QUESTION)),
        (COMPLETIONS, openai_request(QUESTION, stream=True)),
    ],
    ids=["chat", "stream", "completions", "completions-stream"],
)
def test_a_qa_key_counts_against_no_limit_on_any_way_in(serve, path: str, body: dict) -> None:
    with serve(qa_keys=keys(QA_KEY), api_keys=keys(KEY), rate_limit="1/minute", daily_cap_per_origin=1) as served:
        suite = [served.client.post(path, json=body, headers={**bearer(QA_KEY), "Origin": "https://gym.example"})
                 for _ in range(5)]  # fmt: skip
        other = [served.client.post(path, json=body, headers=bearer(KEY)) for _ in range(2)]
    assert [r.status_code for r in suite] == [200] * 5
    assert [r.status_code for r in other] == [200, 429]  # anyone else is still limited
    assert all(r.text for r in suite) and len(served.engine.asked) == 6


def test_a_qa_key_is_let_into_v1_and_an_unknown_bearer_is_not(serve) -> None:
    with serve(qa_keys=keys(QA_KEY), api_keys=keys(KEY)) as served:
        qa = served.client.post(COMPLETIONS, json=openai_request(QUESTION), headers=bearer(QA_KEY))
        stranger = served.client.post(COMPLETIONS, json=openai_request(QUESTION), headers=bearer("s" * 20))
        models = served.client.get("/v1/models", headers=bearer(QA_KEY))
    assert (qa.status_code, stranger.status_code, models.status_code) == (200, 401, 200)


def test_without_qa_keys_a_bearer_on_the_chat_api_changes_nothing(serve) -> None:
    with serve(rate_limit="1/minute") as served:
        codes = [served.client.post("/api/chat", json={"message": QUESTION}, headers=bearer(QA_KEY)).status_code
                 for _ in range(2)]  # fmt: skip
    assert codes == [200, 429]


def test_bot_qa_keys_are_checked_like_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_QA_KEYS", f"{QA_KEY}, short")
    with pytest.raises(ValueError, match="every key in BOT_QA_KEYS must be at least 16") as raised:
        Settings()
    assert "short" not in str(raised.value)
    monkeypatch.setenv("BOT_QA_KEYS", f"{QA_KEY},{QA_KEY}-2")
    assert [k.get_secret_value() for k in Settings().qa_keys] == [QA_KEY, f"{QA_KEY}-2"]
