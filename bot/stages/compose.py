"""Compose replies: an extractive answer from the retrieved passages, and the fixed replies of triage.

The extractive composer needs no language model: it picks the passages' most relevant sentences and
quotes them verbatim, so it can never state anything that is not in a cited passage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bot import policy
from bot.content.documents import Chunk, Sentence
from bot.contract import Status
from bot.stages.triage import Verdict

# Case-sensitive on purpose: "It" opens an anaphoric sentence, "IT band" does not.
_ANAPHORIC_START = re.compile(r"^(This|These|That|Those|It|They)\b")


@dataclass(frozen=True)
class RankedPassage:
    """A retrieved chunk with its fused rank score and the retrievers' own scores."""

    chunk: Chunk
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None


@dataclass(frozen=True)
class Support:
    """A verbatim span of a passage (absolute offsets in its document) that backs a claim."""

    chunk_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Claim:
    """One statement of the answer and the passage text it rests on."""

    text: str
    support: tuple[Support, ...]
    is_list: bool = False
    #: Written by a language model (a paraphrase), rather than quoted verbatim from the passage.
    generated: bool = False


@dataclass(frozen=True)
class Draft:
    """A reply before rendering: fixed wording around the claims, which the guard may still remove."""

    intro: str = ""
    claims: tuple[Claim, ...] = ()
    claims_heading: str = ""
    outro: str = ""
    removed_claims: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ComposeSettings:
    """How many sentences an answer quotes and how relevant they must be."""

    points: int = 3
    depth: int = 3
    min_relevance: float = 0.35
    relative_relevance: float = 0.7
    #: Weight of the shared (IDF-weighted) words against the embedding similarity.
    lexical_weight: float = 0.3


@dataclass(frozen=True)
class Evidence:
    """What the composer may quote: the ranked passages and their sentences' vectors and words."""

    passages: Sequence[RankedPassage]
    vectors: Mapping[tuple[str, int], np.ndarray]
    words: Mapping[tuple[str, int], set[str]]
    #: Inverse document frequency of each corpus word: rare shared words say more than common ones.
    idf: Mapping[str, float] = field(default_factory=dict)


# -- choosing sentences ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """One or two neighbouring sentences quoted together, scored as a whole."""

    passage_rank: int
    chunk: Chunk
    sentences: tuple[Sentence, ...]
    relevance: float

    @property
    def start(self) -> int:
        return self.sentences[0].start

    @property
    def end(self) -> int:
        return self.sentences[-1].end

    def overlaps(self, other: _Unit) -> bool:
        return self.chunk.doc_id == other.chunk.doc_id and self.start < other.end and other.start < self.end

    def claim(self) -> Claim:
        text = " ".join(self.chunk.sentence_text(s) for s in self.sentences)
        return Claim(text, (Support(self.chunk.chunk_id, self.start, self.end),), is_list=self.sentences[-1].is_list)


def _weighted_overlap(query_words: set[str], words: set[str], idf: Mapping[str, float]) -> float:
    """Share of the question's (IDF-weighted) words that the sentence contains."""
    total = sum(idf.get(w, 0.0) for w in query_words)
    return sum(idf.get(w, 0.0) for w in query_words & words) / total if total else 0.0


def _units(
    query_vector: np.ndarray, query_words: set[str], evidence: Evidence, settings: ComposeSettings
) -> list[_Unit]:
    units = []
    for rank, passage in enumerate(evidence.passages[: settings.depth]):
        sentences = passage.chunk.sentences
        for position, sentence in enumerate(sentences):
            key = (passage.chunk.chunk_id, position)
            if not sentence.quotable or key not in evidence.vectors:
                continue
            text = passage.chunk.sentence_text(sentence)
            span: tuple[Sentence, ...] = (sentence,)
            words = set(evidence.words.get(key, set()))
            previous = sentences[position - 1] if position else None
            if _ANAPHORIC_START.match(text) and previous is not None and previous.quotable and not previous.is_list:
                # "This prevents overloading the joints." only makes sense after the sentence it points to.
                span = (previous, sentence)
                words |= evidence.words.get((passage.chunk.chunk_id, position - 1), set())
            vector = evidence.vectors[key]
            overlap = _weighted_overlap(query_words, words, evidence.idf)
            relevance = float(vector @ query_vector) + settings.lexical_weight * overlap + 0.05 / (rank + 1)
            if len(text) < 30 and len(span) == 1:
                relevance -= 0.1  # a fragment reads badly on its own
            units.append(_Unit(rank, passage.chunk, span, relevance))
    return units


def select_claims(
    query_vector: np.ndarray,
    query_words: set[str],
    evidence: Evidence,
    settings: ComposeSettings,
    *,
    limit: int | None = None,
) -> tuple[Claim, ...]:
    """The lead sentence and up to ``settings.points`` supporting ones: lead first, the rest in reading order.

    A point must be nearly as relevant as the lead and must not repeat text already quoted.
    """
    units = sorted(_units(query_vector, query_words, evidence, settings), key=lambda u: -u.relevance)
    if not units:
        return ()
    lead = units[0]
    floor = max(settings.min_relevance, lead.relevance * settings.relative_relevance)
    chosen = [lead]
    wanted = 1 + settings.points if limit is None else limit
    for unit in units[1:]:
        if len(chosen) >= wanted or unit.relevance < floor:
            break
        if not any(unit.overlaps(c) for c in chosen):
            chosen.append(unit)
    rest = sorted(chosen[1:], key=lambda u: (u.passage_rank, u.start))
    return tuple(u.claim() for u in [lead, *rest])


# -- fixed replies -----------------------------------------------------------------------------


def _examples() -> str:
    return "\n".join(f"- {q}" for q in policy.EXAMPLE_QUESTIONS)


def fixed_reply(verdict: Verdict) -> Draft:
    """The reply for a verdict that does not quote the articles: invalid, out of scope or not covered."""
    if verdict.status is Status.invalid:
        return Draft(
            intro=policy.INVALID.get(verdict.reason, policy.INVALID["empty"]).replace("{detail}", verdict.detail)
        )
    if verdict.status is Status.out_of_scope:
        lead = policy.OTHER_LANGUAGE if verdict.reason == "language" else policy.OUT_OF_SCOPE
        return Draft(intro=f"{lead} You could ask:\n\n{_examples()}")
    if verdict.status is Status.not_found:
        return Draft(intro=policy.NOT_COVERED.get(verdict.detail, policy.NOT_FOUND))
    raise ValueError(f"{verdict.status} replies are composed from passages")


def escalation_intro(verdict: Verdict) -> str:
    """The warning that leads every escalated reply."""
    return policy.escalation_warning(verdict.detail)


# -- rendering ---------------------------------------------------------------------------------


def _render_claim(claim: Claim, markers: str, *, bullet: bool) -> str:
    if not claim.is_list:
        return f"{'- ' if bullet else ''}{claim.text} {markers}"
    lead_in, *items = [line.strip() for line in claim.text.splitlines() if line.strip()]
    indent = "  " if bullet else ""
    nested = "\n".join(f"{indent}{item}" for item in items)
    return f"{'- ' if bullet else ''}{lead_in} {markers}\n{'' if bullet else chr(10)}{nested}"


def citation_numbers(claims: Sequence[Claim]) -> dict[str, int]:
    """Citation number of each passage, in the order the claims first use them."""
    numbers: dict[str, int] = {}
    for claim in claims:
        for support in claim.support:
            numbers.setdefault(support.chunk_id, len(numbers) + 1)
    return numbers


def prose_sentence(claim: Claim, numbers: Mapping[str, int]) -> str:
    """A generated claim as it appears in the answer, with its markers."""
    return f"{claim.text} {''.join(f'[{numbers[s.chunk_id]}]' for s in claim.support)}"


def render(draft: Draft, passages: Mapping[str, Chunk]) -> tuple[str, list[tuple[int, Chunk, int, int]]]:
    """Markdown for a draft, and its citations as ``(n, chunk, quote start, quote end)``.

    Passages are numbered in the order the answer first uses them; a passage's quote spans every
    sentence the answer took from it.
    """
    numbers = citation_numbers(draft.claims)
    spans: dict[str, tuple[int, int]] = {}
    for claim in draft.claims:
        for support in claim.support:
            start, end = spans.get(support.chunk_id, (support.start, support.end))
            spans[support.chunk_id] = (min(start, support.start), max(end, support.end))

    def markers(claim: Claim) -> str:
        return "".join(f"[{numbers[s.chunk_id]}]" for s in claim.support)

    blocks = [draft.intro] if draft.intro else []
    claims = list(draft.claims)
    heading = draft.claims_heading
    if claims and all(c.generated for c in claims):  # a model's answer reads as prose
        blocks.append(" ".join(prose_sentence(c, numbers) for c in claims))
        claims = []
    if claims and not draft.intro and not heading:
        blocks.append(_render_claim(claims[0], markers(claims[0]), bullet=False))
        # A list lead ends in a list; a heading keeps the points from merging into it.
        heading = policy.MORE_POINTS_HEADING if claims[0].is_list else ""
        claims = claims[1:]
    if claims:
        if heading:
            blocks.append(heading)
        blocks.append("\n".join(_render_claim(c, markers(c), bullet=True) for c in claims))
    if draft.outro:
        blocks.append(draft.outro)
    citations = [(n, passages[chunk_id], *spans[chunk_id]) for chunk_id, n in numbers.items()]
    return "\n\n".join(blocks), citations
