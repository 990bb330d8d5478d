"""The generative composer with real models: SmolLM2 in-process, and through an OpenAI-compatible server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from bot.contract import Answer, Status
from bot.engine.engine import Engine
from bot.policy import DISCLAIMER

pytestmark = [pytest.mark.integration, pytest.mark.slow]

llama_cpp = pytest.importorskip("llama_cpp", reason="the 'local' extra (llama-cpp-python) is not installed")
FEET = "Where should my feet go on the leg press?"


def reached_the_model(answer: Answer) -> bool:
    """The model answered (its sentences were kept or judged by the guard), rather than failing."""
    return answer.fallback is None or (answer.removed_sentences > 0 and "failed" not in answer.fallback)


def check_guarded(answer: Answer) -> None:
    assert answer.status is Status.answered and answer.answer.endswith(DISCLAIMER)
    for citation in answer.citations:
        assert citation.quote in citation.text


def test_the_local_model_answers_behind_the_guard(engine: Engine) -> None:
    local = engine.with_composer("local")
    assert local.composer == "local", local.composer_problem
    *pieces, answer = local.stream(FEET)
    assert isinstance(answer, Answer) and answer.composer == "local" and reached_the_model(answer)
    check_guarded(answer)
    assert "".join(pieces) == answer.answer
    assert "first_token" in answer.timings_ms


@pytest.fixture(scope="module")
def openai_compatible_server() -> Iterator[str]:
    """``python -m llama_cpp.server`` serving the SmolLM2 GGUF on a free loopback port."""
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    from bot.models.chat import local_model_path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(local_model_path()), "--host", "127.0.0.1",
               "--port", str(port), "--n_threads", "2", "--model_alias", "smollm2"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("llama_cpp.server did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_an_openai_compatible_server_answers_through_init_chat_model(
    openai_compatible_server: str, index_settings, embeddings
) -> None:
    pytest.importorskip("langchain_openai", reason="the 'openai' extra (langchain-openai) is not installed")
    from bot.index import open_index
    from bot.settings import Settings

    settings = Settings(**{**index_settings.model_dump(), "composer": "openai:smollm2",
                           "llm_base_url": openai_compatible_server, "llm_api_key": "local"})  # fmt: skip
    engine = Engine(settings, open_index(settings, embeddings), embeddings)
    assert engine.composer == "openai:smollm2", engine.composer_problem
    *pieces, answer = engine.stream(FEET)
    assert isinstance(answer, Answer) and answer.composer == "openai:smollm2" and reached_the_model(answer)
    check_guarded(answer)
    assert "".join(pieces) == answer.answer


def test_an_unreachable_endpoint_answers_extractively(index_settings, embeddings) -> None:
    pytest.importorskip("langchain_openai", reason="the 'openai' extra (langchain-openai) is not installed")
    from bot.index import open_index
    from bot.settings import Settings

    settings = Settings(**{**index_settings.model_dump(), "composer": "openai:smollm2",
                           "llm_base_url": "http://127.0.0.1:9/v1", "llm_api_key": "x", "llm_timeout": 5})  # fmt: skip
    engine = Engine(settings, open_index(settings, embeddings), embeddings)
    answer = engine.ask(FEET)
    assert answer.status is Status.answered and "shoulder-width" in answer.answer
    assert answer.fallback is not None and "failed" in answer.fallback
