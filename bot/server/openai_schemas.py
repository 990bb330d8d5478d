"""The OpenAI-compatible API's bodies: the chat-completions request, the completion and its chunks, models, errors.

They follow OpenAI's published chat-completions schema closely enough for the ``openai`` SDK, LangChain's
``ChatOpenAI``, Open WebUI and ``curl``. Parameters that would not change a quoted answer are accepted and
ignored (as are unknown ones); parameters and content the coach cannot honour are refused by validation,
each with a clear message and an OpenAI error ``code`` (``unsupported_value``, ``unsupported_parameter``),
which ``errors`` turns into a 400. The coach's own part of a reply, its citations and status, travels in the
``coach`` field, which OpenAI's clients keep without knowing it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from bot import policy
from bot.contract import Citation, Message, Passage, Status

#: The error codes validation gives for what the coach refuses (others are pydantic's, mapped in ``errors``).
REFUSAL_CODES = frozenset({"unsupported_value", "unsupported_parameter", "invalid_value"})
_NO_CHOICE = (None, "none", "auto")  # a tool_choice / function_call that asks for no tool
_TURNS = ("user", "assistant")  # the roles of a conversation's turns; system and developer messages are not read


def _refuse(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


# What the schema publishes is what is accepted: the refused values are parsed (so that they are refused with
# a message of their own rather than pydantic's) but left out of the OpenAPI schema.
def _or_null(schema: dict[str, Any]) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [schema, {"type": "null"}]})


_NOTHING = _or_null({"type": "array", "maxItems": 0})
_TEXT_PART = {
    "oneOf": [
        {"type": "object", "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
         "required": ["type", "text"]},
        {"type": "object", "properties": {"type": {"const": "refusal"}, "refusal": {"type": "string"}},
         "required": ["type", "refusal"]},
    ]
}  # fmt: skip


class ChatMessage(BaseModel):
    """One message of the conversation; only its text is read (``name`` and the like are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True)  # as typed: the SDKs never send "true" for true

    role: Annotated[
        Literal["system", "developer", "user", "assistant", "tool", "function"],
        WithJsonSchema({"type": "string", "enum": ["system", "developer", "user", "assistant"]}),
    ]
    content: Annotated[
        str | list[dict[str, Any]] | None,
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": _TEXT_PART}, {"type": "null"}]}),
    ] = Field(None, description='A string, or a list of `{"type": "text", "text": ...}` parts (joined by newlines).')
    tool_calls: Annotated[list[Any] | None, _NOTHING] = None

    @field_validator("role")
    @classmethod
    def _no_tool_results(cls, role: str) -> str:
        if role in ("tool", "function"):
            raise _refuse("unsupported_value", policy.NO_TOOL_MESSAGES)
        return role

    @field_validator("content")
    @classmethod
    def _text_parts_only(cls, content: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]] | None:
        for part in content if isinstance(content, list) else []:
            kind = part.get("type")
            text = part.get("text") if kind == "text" else part.get("refusal") if kind == "refusal" else None
            if not isinstance(text, str):
                raise _refuse("unsupported_value", policy.text_parts_only(str(kind)))
        return content

    @field_validator("tool_calls")
    @classmethod
    def _no_tool_calls(cls, calls: list[Any] | None) -> list[Any] | None:
        if calls:
            raise _refuse("unsupported_value", policy.NO_TOOL_MESSAGES)
        return calls

    @property
    def text(self) -> str:
        """The message's text (an assistant's ``refusal`` parts count as text)."""
        if isinstance(self.content, list):
            return "\n".join(str(part.get("text", part.get("refusal", ""))) for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a last chunk with the token counts."""

    model_config = ConfigDict(extra="ignore", strict=True)  # as typed: the SDKs never send "true" for true

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """A chat-completions request: the last user message is the question, the earlier turns its history.

    System and developer messages are accepted and read by nothing: they never change triage, grounding or
    the disclaimer. ``temperature``, ``top_p``, ``max_tokens``, ``max_completion_tokens``, ``stop``,
    ``seed``, the penalties, ``logit_bias`` and unknown parameters are accepted and ignored: a quoted answer
    has nothing for them to change.
    """

    model_config = ConfigDict(extra="ignore", strict=True)  # as typed: the SDKs never send "true" for true

    model: str = Field(description=f"`{policy.MODEL_ID}`, the one model `GET /v1/models` lists.",
                       examples=[policy.MODEL_ID])  # fmt: skip
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation, oldest first.")
    stream: bool | None = Field(False, description="Send `chat.completion.chunk` server-sent events.")
    stream_options: StreamOptions | None = None
    user: str | None = Field(
        None,
        max_length=256,
        description="An end user's id: with an API key, each end user of the key has the rate limit of their own.",
    )
    # Accepted and ignored.
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    parallel_tool_calls: bool | None = None
    # Refused unless they ask for nothing.
    n: Annotated[int | None, _or_null({"const": 1})] = Field(
        None, description="1 (or left out): the coach gives one answer."
    )
    tools: Annotated[list[Any] | None, _NOTHING] = Field(
        None, description="Refused unless empty: the coach calls no tools."
    )
    tool_choice: Annotated[Any, WithJsonSchema({"enum": ["none", "auto", None]})] = None
    functions: Annotated[list[Any] | None, _NOTHING] = None
    function_call: Annotated[Any, WithJsonSchema({"enum": ["none", "auto", None]})] = None
    response_format: Annotated[
        dict[str, Any] | None,
        _or_null({"type": "object", "properties": {"type": {"const": "text"}}, "required": ["type"]}),
    ] = Field(None, description='`{"type": "text"}` (or left out).')
    logprobs: Annotated[bool | None, _or_null({"const": False})] = None
    top_logprobs: Annotated[int | None, _or_null({"const": 0})] = None
    modalities: Annotated[list[str] | None, _or_null({"type": "array", "items": {"const": "text"}})] = None
    audio: Annotated[Any, WithJsonSchema({"type": "null"})] = None

    @field_validator("n")
    @classmethod
    def _one_answer(cls, n: int | None) -> int | None:
        if n not in (None, 1):
            raise _refuse("unsupported_value", policy.ONE_ANSWER_ONLY)
        return n

    @field_validator("tools", "functions")
    @classmethod
    def _no_tools(cls, tools: list[Any] | None) -> list[Any] | None:
        if tools:
            raise _refuse("unsupported_parameter", policy.NO_TOOLS)
        return tools

    @field_validator("tool_choice", "function_call")
    @classmethod
    def _no_tool_choice(cls, choice: Any) -> Any:
        if choice not in _NO_CHOICE:
            raise _refuse("unsupported_value", policy.NO_TOOLS)
        return choice

    @field_validator("response_format")
    @classmethod
    def _plain_text(cls, form: dict[str, Any] | None) -> dict[str, Any] | None:
        if form is not None and form.get("type") != "text":
            raise _refuse("unsupported_value", policy.PLAIN_TEXT_ONLY)
        return form

    @field_validator("logprobs", "top_logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | int | None) -> bool | int | None:
        if value:
            raise _refuse("unsupported_value", policy.NO_LOGPROBS)
        return value

    @field_validator("modalities")
    @classmethod
    def _text_out(cls, modalities: list[str] | None) -> list[str] | None:
        if modalities is not None and set(modalities) - {"text"}:
            raise _refuse("unsupported_value", policy.NO_AUDIO)
        return modalities

    @field_validator("audio")
    @classmethod
    def _no_audio(cls, audio: Any) -> Any:
        if audio is not None:
            raise _refuse("unsupported_parameter", policy.NO_AUDIO)
        return audio

    @field_validator("messages")
    @classmethod
    def _ends_with_a_question(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        turns = [message for message in messages if message.role in _TURNS]
        if messages and (not turns or turns[-1].role != "user"):
            raise _refuse("invalid_value", policy.LAST_MESSAGE_NOT_A_QUESTION)
        return messages

    def turns(self) -> list[ChatMessage]:
        """The user and assistant messages: what ``/api/chat`` would take (system messages are left out)."""
        return [message for message in self.messages if message.role in _TURNS]

    def conversation(self) -> tuple[str, list[Message]]:
        """The question (the last user message) and the history before it, as ``/api/chat`` takes them."""
        *earlier, question = self.turns()
        return question.text, [Message(role=turn.role, content=turn.text) for turn in earlier]

    @property
    def include_usage(self) -> bool:
        """Whether a stream ends with a usage chunk."""
        return self.stream_options is not None and self.stream_options.include_usage


# -- replies --------------------------------------------------------------------------------------------


class Usage(BaseModel):
    """Tokens counted with the embedding model's tokenizer (not OpenAI's): every message's text, and the reply."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Coach(BaseModel):
    """The extension field ``coach``: what the reply is and what it quotes, for clients that render sources."""

    status: Status | Literal["housekeeping"] = Field(
        description="The answer's status (`answered`, `escalated`, `out_of_scope`, `not_found`, `invalid`, `chat`), "
        "or `housekeeping` for a front-end's title or tag request answered without the articles."
    )
    reason: str | None = Field(None, description="Why triage chose the status, e.g. `red_flag:pop_swelling`.")
    disclaimer: str = Field(description="The medical disclaimer (which also ends every answer's text).")
    citations: list[Citation] = Field(default_factory=list, description="The sources behind the `[n]` markers.")
    passages: list[Passage] = Field(default_factory=list, description="The passages retrieved, best first.")


class AssistantMessage(BaseModel):
    """The reply's message."""

    role: Literal["assistant"] = "assistant"
    content: str = Field(description="The same text `/api/chat` answers: `[n]` markers, ending with the disclaimer.")
    refusal: None = None


class Choice(BaseModel):
    """The one choice of a reply (``n`` is 1)."""

    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    """A whole reply (``stream`` false)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = Field(None, description="The engine version and index build.")
    choices: list[Choice]
    usage: Usage
    coach: Coach


def _none(value: object) -> bool:
    return value is None


class Delta(BaseModel):
    """What a chunk adds: the role (first chunk), a piece of the text, or nothing (the end)."""

    role: Literal["assistant"] | None = Field(None, exclude_if=_none)
    content: str | None = Field(None, exclude_if=_none)


class ChunkChoice(BaseModel):
    """The one choice of a chunk; ``finish_reason`` is set on the chunk that ends the reply."""

    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a stream: the role, then pieces of the text, then the end with ``coach``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = Field(None, exclude_if=_none, description="On the last chunk, with `include_usage`.")
    coach: Coach | None = Field(None, exclude_if=_none, description="On the chunk that ends the reply.")


class Model(BaseModel):
    """The coach as a model."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    """``GET /v1/models``: the one model."""

    object: Literal["list"] = "list"
    data: list[Model]


class OpenAIError(BaseModel):
    """What went wrong."""

    message: str
    type: str = Field(description="`invalid_request_error`, `requests` (rate limited) or `server_error`.")
    param: str | None = None
    code: str | None = Field(None, description="e.g. `model_not_found`, `unsupported_value`, `rate_limit_exceeded`.")
    disclaimer: str | None = Field(None, exclude_if=_none, description="On 503s that stand in for an answer.")


class OpenAIErrorBody(BaseModel):
    """Every error of ``/v1``, in OpenAI's shape (also the ``data`` of a stream's error event)."""

    error: OpenAIError


#: The errors the ``/v1`` routes may answer with, for the OpenAPI documentation.
OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OpenAIErrorBody, "description": "Malformed, or asks for what the coach cannot do."},
    401: {"model": OpenAIErrorBody, "description": "BOT_API_KEYS is set and no valid key was sent."},
    404: {"model": OpenAIErrorBody, "description": "An unknown model."},
    429: {"model": OpenAIErrorBody, "description": "Too many requests from this client or key, or a site's cap."},
    503: {"model": OpenAIErrorBody, "description": "Still starting, or the articles can't be reached."},
}
