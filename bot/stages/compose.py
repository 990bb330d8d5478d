"""Compose replies: an extractive answer from the retrieved passages, and the fixed replies of triage.

The extractive composer needs no language model: it picks the passages' most relevant sentences and
quotes them verbatim, so it can never state anything that is not in a cited passage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from bot import policy
from bot.cache import CountingLRU
from bot.content.documents import Chunk, Sentence
from bot.contract import Status
from bot.language.quantities import counted_thing, states_count
from bot.language.words import content_words
from bot.stages.state import AnswerState, Claim, Draft, RankedPassage, SentenceKey, Support, Verdict

# Case-sensitive on purpose: "It" opens an anaphoric sentence, "IT band" does not.
_ANAPHORIC_START = re.compile(r"^(This|These|That|Those|It|They)\b")


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
    vectors: Mapping[SentenceKey, np.ndarray]
    words: Mapping[SentenceKey, set[str]]
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
        message = policy.INVALID.get(verdict.reason, policy.INVALID["empty"])
        return Draft(intro=message.replace("{detail}", verdict.detail))
    if verdict.status is Status.out_of_scope:
        lead = policy.OTHER_LANGUAGE if verdict.reason == "language" else policy.OUT_OF_SCOPE
        return Draft(intro=f"{lead} You could ask:\n\n{_examples()}")
    if verdict.status is Status.not_found:
        return Draft(intro=policy.NOT_COVERED.get(verdict.detail, policy.NOT_FOUND))
    raise ValueError(f"{verdict.status} replies are composed from passages")


def answers_count(question: str, claims: Sequence[Claim]) -> bool:
    """A "how many …?" question is only answered if the quoted text puts a number on that thing."""
    thing = counted_thing(question)
    return thing is None or any(states_count(claim.text, thing) for claim in claims)


class Compose:
    """Writes the draft: quoted sentences for an answer or an escalation, the fixed wording for everything else."""

    name = "compose"

    def __init__(self, settings: ComposeSettings, *, word_cache_size: int = 8192) -> None:
        self.settings = settings
        # Content-addressed (chunk id, sentence position): never stale, so shared by every index version.
        self._sentence_words: CountingLRU[set[str]] = CountingLRU(word_cache_size)

    def applies(self, state: AnswerState) -> bool:
        """Once a status is decided (always, by now)."""
        return state.verdict is not None

    def run(self, state: AnswerState) -> AnswerState:
        """Draft the reply the verdict calls for."""
        verdict = state.verdict
        assert verdict is not None
        if verdict.status is Status.escalated:
            state.draft = Draft(
                intro=policy.escalation_warning(verdict.detail),
                claims=self.claims(state, limit=2),
                claims_heading=policy.ESCALATION_GUIDANCE_HEADING,
            )
        elif verdict.status is Status.answered:
            assert state.query is not None
            claims = self.claims(state, limit=None)
            state.facts = claims if claims and answers_count(state.query.asked, claims) else ()
            state.draft = Draft(claims=state.facts)
        else:
            state.draft = fixed_reply(verdict)
        return state

    def claims(self, state: AnswerState, *, limit: int | None) -> tuple[Claim, ...]:
        """The sentences to quote for the question: a lead and the points that support it."""
        if state.query is None or state.query_vector is None or state.snapshot is None:
            return ()
        passages = state.passages[: self.settings.depth]
        words = content_words(state.query.search_text)
        lexical = state.snapshot.index.lexical
        evidence = Evidence(passages, state.sentence_vectors, self._words(passages), lexical.idf(words))
        return select_claims(state.query_vector, words, evidence, self.settings, limit=limit)

    def _words(self, passages: Sequence[RankedPassage]) -> dict[SentenceKey, set[str]]:
        words = {}
        for passage in passages:
            for position, sentence in enumerate(passage.chunk.sentences):
                key = (passage.chunk.chunk_id, position)
                text = passage.chunk.sentence_text(sentence)
                words[key] = self._sentence_words.get_or_compute(key, partial(content_words, text))
        return words
