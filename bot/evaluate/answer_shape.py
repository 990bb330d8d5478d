"""Does a reply lead with the answer, and how much of it is padding? Measured on the reply's text alone.

``lead``: the reply body's first sentence holds one of the case's ``lead`` spans. ``padding``: the share of
the reply's points (its cited statements after the first) that hold none of the case's ``relevant`` spans.
Text is compared case-insensitively, with whitespace collapsed, Markdown emphasis removed and typographic
quotes folded to plain ones (see ``eval/README.md``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: A cited statement: the text before a run of ``[n]`` markers, on one line (``groundedness`` splits by it too).
CITED_STATEMENT = re.compile(r"(?P<text>[^\[\n]+?)(?P<markers>(?:\s*\[\d+\])+)")

_MARKERS = re.compile(r"\s*\[\d+\]")
_EMPHASIS = re.compile(r"\*\*|__")
_LIST_MARKER = re.compile(r"^[ \t]*(?:[-*+•]|\d+[.)])[ \t]+", re.MULTILINE)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


def normalized(text: str) -> str:
    """``text`` as compared: lower case, Markdown emphasis removed, quotes folded, whitespace collapsed."""
    return " ".join(_EMPHASIS.sub("", text).translate(_QUOTES).lower().split())


def holds_any(spans: Sequence[str], text: str) -> bool:
    """Whether ``text`` contains one of ``spans`` (compared as ``normalized`` text)."""
    haystack = normalized(text)
    return any(normalized(span) in haystack for span in spans)


def sentences(body: str) -> list[str]:
    """The body's sentences, without ``[n]`` markers, emphasis and list markers.

    A sentence ends at ``.``, ``!`` or ``?`` followed by whitespace, and at every line break; its spaces are
    collapsed, and blank pieces (a rule, a blank line) are dropped.
    """
    text = _LIST_MARKER.sub("", _EMPHASIS.sub("", _MARKERS.sub("", body)))
    return [" ".join(piece.split()) for piece in _SENTENCE_BREAK.split(text) if piece.strip(" \t-*#>")]


def first_sentence(body: str) -> str:
    """The sentence a reader meets first (empty for an empty body)."""
    found = sentences(body)
    return found[0] if found else ""


def leads_with(lead_spans: Sequence[str], body: str) -> bool | None:
    """Whether the body's first sentence holds a lead span; ``None`` when the case lists none."""
    if not lead_spans:
        return None
    return holds_any(lead_spans, first_sentence(body))


def cited_statements(body: str) -> list[str]:
    """The reply's cited statements in reading order (the text before each run of ``[n]`` markers)."""
    found = (match.group("text").strip(" -*") for match in CITED_STATEMENT.finditer(body))
    return [text for text in found if text]


@dataclass(frozen=True)
class Padding:
    """A reply's points (its cited statements after the first) and those that hold no relevant span."""

    points: tuple[str, ...]
    padded: tuple[str, ...]

    @property
    def share(self) -> float:
        """The padding metric: share of the points holding no relevant span (lower is better)."""
        return round(len(self.padded) / len(self.points), 4)


def padding(relevant: Sequence[str], body: str) -> Padding | None:
    """The reply's points and its padding; ``None`` (not measured) without ``relevant`` spans or points.

    A reply whose only cited statement is its first makes no point, so there is nothing to measure.
    """
    points = tuple(cited_statements(body)[1:])
    if not relevant or not points:
        return None
    return Padding(points, tuple(point for point in points if not holds_any(relevant, point)))
