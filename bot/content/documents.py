"""Articles and the passages cut from them: what the corpus is made of, before any index or model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

_MARKERS = re.compile(r"\*\*|^\s*[-*+] ", re.MULTILINE)


@dataclass(frozen=True)
class Article:
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
