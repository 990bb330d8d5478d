"""The JSON contract every shell serves: ``Answer`` with its citations and passages, and conversation turns."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Status(str, Enum):
    """What kind of reply the engine gave."""

    answered = "answered"
    escalated = "escalated"
    out_of_scope = "out_of_scope"
    not_found = "not_found"
    invalid = "invalid"
    chat = "chat"


class Message(BaseModel):
    """One earlier turn of the conversation."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"]
    content: str


class Citation(BaseModel):
    """A numbered source behind ``[n]`` in the answer; ``quote`` is verbatim in ``text``."""

    n: int
    chunk_id: str
    doc_id: str
    title: str
    section: str
    text: str = Field(description="The whole passage.")
    quote: str = Field(description="The sentence(s) of the passage the answer used.")
    start: int = Field(description="Offset of the quote in the document text.")
    end: int


class Passage(BaseModel):
    """A retrieved passage, best first, with its fused score and the scores behind it."""

    chunk_id: str
    doc_id: str
    section: str
    text: str
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    start: int
    end: int


class Answer(BaseModel):
    """The engine's reply: the JSON contract every shell (CLI, API, chat page, eval) serves."""

    question: str
    status: Status
    answer: str = Field(description="Markdown with [n] markers, ending with the disclaimer.")
    disclaimer: str
    citations: list[Citation] = Field(default_factory=list)
    passages: list[Passage] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    reason: str | None = Field(None, description="Why triage chose this status, e.g. 'red_flag:pop_swelling'.")
    composer: str = Field("extractive", description="What wrote the answer: 'extractive' or the chat model.")
    removed_sentences: int = Field(0, description="Generated sentences the grounding guard removed.")
    fallback: str | None = Field(None, description="Why the extractive answer replaced a generated one.")


# -- text the contract can carry ----------------------------------------------------------------------


def readable(text: str) -> bool:
    """Whether ``text`` can be sent as UTF-8: no lone surrogates (which a JSON escape of half a pair makes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def make_readable(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (a split pair is joined again)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def readable_request(question: str, history: object) -> bool:
    """Whether a question and its history (turns as dicts or ``Message``) are all readable text."""
    turns = history if isinstance(history, list | tuple) else []
    contents = [turn.get("content") if isinstance(turn, dict) else getattr(turn, "content", None) for turn in turns]
    return readable(question) and all(readable(content) for content in contents if isinstance(content, str))


def json_line(answer: Answer) -> str:
    """``answer`` as one line of JSON that any JSON-lines reader splits correctly.

    JSON allows U+2028 and U+2029 raw inside strings, but Python's ``str.splitlines`` and many other readers
    break lines there; escaped, they are the same JSON.
    """
    return answer.model_dump_json().replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
