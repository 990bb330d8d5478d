"""The records that flow through the pipeline, and the public ``Answer`` contract."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

_MARKERS = re.compile(r"\*\*|^\s*[-*+] ", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    """One article: front matter plus its Markdown body (``text``); offsets everywhere index into ``text``."""

    doc_id: str
    title: str
    text: str
    site: str = ""
    author: str = ""
    source: str = ""
    disclaimer: str = ""


class Sentence(NamedTuple):
    """A span of a chunk that can be quoted on its own (absolute offsets into the document text)."""

    start: int
    end: int
    quotable: bool = True
    #: The span is a lead-in with its list items (Markdown list markers included), rendered as a nested list.
    is_list: bool = False


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: a contiguous span ``[start, end)`` of its document's text."""

    chunk_id: str
    doc_id: str
    title: str
    section: tuple[str, ...]
    text: str
    start: int
    end: int
    #: Text that situates the chunk (e.g. the lead-in of a list it continues); embedded, never quoted.
    context: str = ""
    sentences: tuple[Sentence, ...] = field(default_factory=tuple)

    @property
    def section_path(self) -> str:
        """Human-readable section path, e.g. ``Common Causes › Improper Form``."""
        return " › ".join(self.section) if self.section else "Introduction"

    @property
    def headed_text(self) -> str:
        """The passage under its title, headings and context: what BM25 sees."""
        parts = [f"{self.title} › {self.section_path}"]
        if self.context:
            parts.append(self.context)
        parts.append(self.text)
        return "\n".join(parts)

    @property
    def plain_text(self) -> str:
        """The passage alone without Markdown markers: what the passage vectors see."""
        return _MARKERS.sub("", self.text)

    def sentence_text(self, sentence: Sentence) -> str:
        """The verbatim text of one of this chunk's sentences."""
        return self.text[sentence.start - self.start : sentence.end - self.start]


class Status(str, Enum):
    """What kind of reply the engine gave."""

    answered = "answered"
    escalated = "escalated"
    out_of_scope = "out_of_scope"
    not_found = "not_found"
    invalid = "invalid"


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
