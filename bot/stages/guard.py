"""The grounding guard: every claim must rest on a retrieved passage, or it does not reach the user.

A quoted claim must be verbatim in its passage. A sentence a language model wrote must cite a fact it
was given (``[n]``), put no number on anything that its cited passage does not, share most of its words
with that passage, and mean nearly the same as one of the passage's sentences.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from bot.content.documents import Chunk
from bot.language.quantities import numbers_in
from bot.language.words import content_words
from bot.stages.state import AnswerState, Claim, Draft, SentenceKey, Support

_MARKDOWN_MARKERS = re.compile(r"(^|\n)\s*[-*+]\s+|\*\*|__")
_SPACE = re.compile(r"\s+")
_MARKER = re.compile(r"\s*\[(\d+)\]")


@dataclass(frozen=True)
class GuardSettings:
    """How close a generated sentence must be to its cited passage (calibrated on the eval sets)."""

    min_similarity: float = 0.65
    min_overlap: float = 0.6


def normalize(text: str) -> str:
    """Text with list markers, emphasis and runs of whitespace removed, for verbatim comparison."""
    return _SPACE.sub(" ", _MARKDOWN_MARKERS.sub(" ", text)).strip()


def _supporting_text(claim: Claim, passages: Mapping[str, Chunk]) -> str | None:
    """The passage text behind a claim's spans, or ``None`` if a span is not in a retrieved passage."""
    quoted = []
    for support in claim.support:
        chunk = passages.get(support.chunk_id)
        if chunk is None or not (chunk.start <= support.start < support.end <= chunk.end):
            return None
        quoted.append(chunk.text[support.start - chunk.start : support.end - chunk.start])
    return " ".join(quoted) if quoted else None


def _paraphrase_problem(text: str, passage_text: str, settings: GuardSettings) -> str | None:
    """Why ``text`` is not a grounded paraphrase of the passage by its numbers and words, or ``None``.

    (The embedding test runs when the sentence is written: ``check_generated_sentence``.)
    """
    if not numbers_in(text) <= numbers_in(passage_text):
        return "states a number its source does not"
    words = content_words(text)
    if not words or len(words & content_words(passage_text)) / len(words) < settings.min_overlap:
        return "says things its source does not"
    return None


def is_supported(claim: Claim, passages: Mapping[str, Chunk], settings: GuardSettings | None = None) -> bool:
    """Whether a claim rests on retrieved passages: verbatim for a quote, grounded for a paraphrase."""
    if not claim.support:
        return False
    quoted = _supporting_text(claim, passages)
    if quoted is None:
        return False
    if claim.generated:
        cited = " ".join(passages[s.chunk_id].text for s in claim.support)
        return _paraphrase_problem(claim.text, cited, settings or GuardSettings()) is None
    return normalize(claim.text) in normalize(quoted)


Supports = Callable[[Claim, Mapping[str, Chunk], GuardSettings], bool]
"""Whether a claim rests on the retrieved passages (``is_supported``, unless a test swaps it)."""


def guard(
    draft: Draft,
    passages: Mapping[str, Chunk],
    settings: GuardSettings | None = None,
    *,
    keep: int = 0,
    supports: Supports = is_supported,
) -> Draft:
    """The draft without the claims that are not backed by the retrieved passages.

    The first ``keep`` claims are final (already sent to the reader, after passing this same check as they
    were written) and stay as they are.
    """
    judged = tuple(c for c in draft.claims[keep:] if supports(c, passages, settings or GuardSettings()))
    return replace(draft, claims=draft.claims[:keep] + judged)


_LEADING_MARKER = re.compile(r"(?=\[\d+\])")
# End punctuation counts only before a space or the end: "cheap-pills.example" or "e.g.," are not ends.
_TRAILING_SENTENCE = re.compile(r".*?[.!?]+[\"')\]]*(?:\s*\[\d+\])*(?=\s|$)", re.DOTALL)


def generated_segments(text: str) -> list[str]:
    """A model's answer cut into sentences, each with the ``[n]`` markers that belong to it.

    Models put markers after a sentence ("… knees. [1]") or, small ones especially, before it
    ("[1] Keep …"); the style is read from how the answer starts. The last segment may be unfinished
    while the answer is still streaming.
    """
    if text.lstrip().startswith("["):
        parts = [p for p in _LEADING_MARKER.split(text) if p.strip()]
        merged: list[str] = []
        for part in parts:
            if merged and not re.search(r"[A-Za-z]", _MARKER.sub("", merged[-1])):
                merged[-1] += part  # "[1][2] text": markers before the same text
            else:
                merged.append(part)
        return [m.strip() for m in merged]
    matches = list(_TRAILING_SENTENCE.finditer(text))
    segments = [m.group(0).strip() for m in matches if m.group(0).strip()]
    rest = text[matches[-1].end() if matches else 0 :].strip()
    return [*segments, rest] if rest else segments


@dataclass(frozen=True)
class SentenceCheck:
    """A generated sentence and what the guard made of it: a claim, or the reason it was removed."""

    sentence: str
    claim: Claim | None
    reason: str = ""


def check_generated_sentence(
    sentence: str,
    facts: Sequence[Claim],
    passages: Mapping[str, Chunk],
    vectors: Mapping[SentenceKey, np.ndarray],
    embed: Callable[[str], np.ndarray],
    settings: GuardSettings,
) -> SentenceCheck:
    """Judge one sentence a model wrote about numbered ``facts`` (``[n]`` is the n-th fact)."""
    cited = [int(n) for n in _MARKER.findall(sentence)]
    text = _MARKER.sub("", sentence).strip()
    if len(text.split()) < 3:
        return SentenceCheck(sentence, None, "too short to say anything")
    if not cited:
        return SentenceCheck(sentence, None, "no citation")
    if any(not 1 <= n <= len(facts) for n in cited):
        return SentenceCheck(sentence, None, "cites a fact it was not given")
    chunk_ids = list(dict.fromkeys(s.chunk_id for n in cited for s in facts[n - 1].support))
    chunks = [passages[c] for c in chunk_ids if c in passages]
    if len(chunks) != len(chunk_ids):
        return SentenceCheck(sentence, None, "cites a passage that was not retrieved")
    problem = _paraphrase_problem(text, " ".join(c.text for c in chunks), settings)
    if problem is not None:
        return SentenceCheck(sentence, None, problem)
    vector = embed(text)
    best: tuple[float, Chunk, int] | None = None
    for chunk in chunks:
        for position, span in enumerate(chunk.sentences):
            candidate = vectors.get((chunk.chunk_id, position))
            if span.quotable and candidate is not None:
                similarity = float(candidate @ vector)
                if best is None or similarity > best[0]:
                    best = (similarity, chunk, position)
    if best is None or best[0] < settings.min_similarity:
        return SentenceCheck(sentence, None, "not close enough to what its source says")
    _, chunk, position = best
    span = chunk.sentences[position]
    claim = Claim(text, (Support(chunk.chunk_id, span.start, span.end),), generated=True)
    if not is_supported(claim, passages, settings):  # the check the draft as a whole gets, applied up front
        return SentenceCheck(sentence, None, "says things its source does not")
    return SentenceCheck(sentence, claim)


class Guard:
    """Drops every claim of the draft that is not backed by a retrieved passage (sent text is final)."""

    name = "guard"

    def __init__(self, settings: GuardSettings, *, supports: Supports = is_supported) -> None:
        self.settings = settings
        self.supports = supports

    def applies(self, state: AnswerState) -> bool:
        """When the draft quotes anything not yet sent."""
        return len(state.draft.claims) > state.committed

    def run(self, state: AnswerState) -> AnswerState:
        """Keep only the supported claims."""
        state.draft = guard(state.draft, state.chunks(), self.settings, keep=state.committed, supports=self.supports)
        return state
