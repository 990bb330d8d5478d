"""Choosing what to quote: the sentence that answers the question first, then only points that add to it.

A sentence's score starts from how close it is in meaning and in words to the question (the retrievers'
signals), then: the cue of the kind of answer asked for (a cause for "why", the number for "how often"),
the headings it sits under, and how much it says beyond the question's own words. A sentence that only
restates the question, introduces a section or wraps up the article is never the lead and never a point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

import numpy as np

from bot.content.documents import Chunk
from bot.language.discourse import CLOSING_HEADINGS, answers_kind, is_framing
from bot.language.questions import Kind
from bot.language.words import content_words
from bot.stages.compose.candidates import (
    Candidate,
    ComposeSettings,
    Evidence,
    Question,
    answers_number,
    candidate_units,
    novelty,
    weighted_share,
)
from bot.stages.state import Claim

#: The words that ask for a number ("how often", "for how long") rather than say what it is of.
_ASKING_FOR_A_NUMBER = content_words("often frequently long much many far times time")


@dataclass(frozen=True)
class Selection:
    """The claims to quote, or why nothing answers the question (then ``related`` may still be offered)."""

    claims: tuple[Claim, ...] = ()
    #: Why no sentence answers it: ``uncovered:number`` (the number asked for is stated nowhere), or empty.
    unanswered: str = ""
    #: The closest sentences the articles do have, best first, for an honest "not covered, but related:" reply:
    #: each says something (no framing, no fragment) and names something the question is about.
    related: tuple[Claim, ...] = ()


def _closes(chunk: Chunk) -> bool:
    return any(CLOSING_HEADINGS.search(heading) for heading in chunk.section)


def _holds_own_focus(unit: Candidate, question: Question, idf: Mapping[str, float]) -> bool:
    seen = set(unit.words) | set(unit.context_words)
    # "after" is said by "Afterward, …": a word the candidate's word starts with counts.
    held = {w for w in question.own_focus if w in seen or (len(w) >= 4 and any(s.startswith(w) for s in seen))}
    return weighted_share(question.own_focus, held, idf or _ones(question.own_focus)) >= 0.5


def _states_the_number_asked(unit: Candidate, question: Question, idf: Mapping[str, float]) -> bool:
    """Whether the unit states the number asked for — in a follow-up, of the thing the conversation is about.

    "for how long?" after "should I warm up?" is not answered by "48 hours of rest": the sentence must also say
    (with its headings) at least half of what the question is about besides the asking. A question asked on its
    own names its subject in its own words ("reps for size" → "8-12 for muscle hypertrophy"): the number suffices.
    """
    if not answers_number(unit, question):
        return False
    if not question.follow_up:
        return True
    about = question.focus - _ASKING_FOR_A_NUMBER
    return not about or _share_said(unit, about, idf) >= 0.5


def _share_said(unit: Candidate, wanted: set[str], idf: Mapping[str, float]) -> float:
    """The IDF-weighted share of ``wanted`` that the unit or its headings say (all words alike without IDFs)."""
    return weighted_share(wanted, unit.words | unit.context_words, idf or _ones(wanted))


def _ones(words: set[str]) -> dict[str, float]:
    return dict.fromkeys(words, 1.0)


def _first(ranked: list[Candidate], wanted: Callable[[Candidate], bool]) -> list[Candidate]:
    """``ranked`` with the candidates ``wanted`` picks first, each part kept in its order."""
    return sorted(ranked, key=lambda unit: not wanted(unit))  # sorting is stable


def _said(unit: Candidate, question: Question) -> bool:
    return bool(question.already_said) and unit.text.split("\n")[0].strip() in question.already_said


#: Kinds of question a framing sentence can answer: whether something matters ("… plays a critical role in knee
#: safety"), the article's summing up, and a list's lead-in ("Some key form mistakes include:").
_FRAMING_MAY_ANSWER = frozenset({Kind.stance, Kind.summary, Kind.listing})


class Ranker(Protocol):
    """What chooses the lead (``bot.stages.compose.ranking.LeadRanker``)."""

    def score(self, unit: Candidate, question: Question, idf: Mapping[str, float]) -> float:
        """How well ``unit`` answers ``question`` as the reply's first sentence."""
        ...


class ByRelevance:
    """The plain ranker: the most relevant sentence leads (no cue of what kind of answer is asked for)."""

    def score(self, unit: Candidate, question: Question, idf: Mapping[str, float]) -> float:
        """The unit's relevance."""
        return unit.relevance


@dataclass(frozen=True)
class PointCandidate:
    """A sentence that might follow the lead, seen with the lead and what the reply says so far."""

    unit: Candidate
    lead: Candidate
    question: Question
    #: The words the reply (and the question) already say.
    said: frozenset[str]


class PointJudge(Protocol):
    """What decides whether a sentence adds an answer-relevant fact (``bot.stages.compose.ranking.PointModel``)."""

    def keeps(self, point: PointCandidate, idf: Mapping[str, float]) -> bool:
        """Whether the sentence belongs in the reply after the lead."""
        ...


class ByRules:
    """Points that say something new, in the member's own terms, nearly as relevant as the lead."""

    def __init__(self, settings: ComposeSettings) -> None:
        self.settings = settings

    def keeps(self, point: PointCandidate, idf: Mapping[str, float]) -> bool:
        """New words, on what the member asked, and close to the lead's relevance."""
        unit, lead, question = point.unit, point.lead, point.question
        if novelty(unit.words, point.said, idf) < self.settings.point_novelty:
            return False
        if lead.relevance <= 0 or unit.relevance / lead.relevance < self.settings.point_relevance:
            return False
        focus = question.own_focus or question.focus
        return bool(focus) and _share_said(unit, focus, idf) >= self.settings.point_focus


def select(
    query_vector: np.ndarray,
    question: Question,
    evidence: Evidence,
    settings: ComposeSettings,
    *,
    limit: int | None = None,
    ranker: Ranker | None = None,
    judge: PointJudge | None = None,
    own_vector: np.ndarray | None = None,
) -> Selection:
    """The lead (the sentence that answers) and the points that add an answer-relevant fact to it.

    Points come in reading order after the lead; there are at most ``settings.points`` (or ``limit`` claims in
    all), and there may be none: a reply may be a single sentence.
    """
    ranker = ranker or ByRelevance()
    judge = judge or ByRules(settings)
    units = [
        u for u in candidate_units(question, evidence, settings, query_vector, own_vector) if not _said(u, question)
    ]
    if not units:
        return Selection()
    # Framing is one feature of the lead's score ("… plays a critical role in knee safety" can be the answer to
    # "does my starting position matter?"), but never a point.
    ranked = sorted(units, key=lambda u: -ranker.score(u, question, evidence.idf))
    if question.asked.kind not in _FRAMING_MAY_ANSWER:
        # A cause, a place, a number or an instruction is never said by framing: it leads only if nothing else can.
        ranked = _first(ranked, lambda u: not is_framing(u.text))
    related = tuple(islice((u.claim() for u in ranked if _may_be_related(u, question)), 5))
    if question.asked.kind is Kind.summary:
        # "tl;dr?": the article's own summing up, if one of the passages found is it.
        ranked = _first(ranked, lambda u: answers_kind(u.text, Kind.summary) or _closes(u.chunk))
    if question.follow_up and question.own_focus:
        # "and rest?" after "how often?": the lead says what this turn asks about, if any sentence does.
        ranked = _first(ranked, lambda u: _holds_own_focus(u, question, evidence.idf))
    if question.asked.strict:
        # "how often?", "by how much?": only a sentence stating that number answers; it leads if there is one about
        # what is asked ("48 hours of rest" is not how long to warm up). This comes after a follow-up's own words:
        # "much" in "by how much?" is not what the sentence must say.
        ranked = _first(ranked, lambda u: _states_the_number_asked(u, question, evidence.idf))
    # A list read as one point is its lead-in's promise more than a fact: lists lead, or are an overview.
    saying = [u for u in units if not is_framing(u.text) and not u.sentences[-1].is_list]
    lead = ranked[0]
    if question.asked.strict and not _states_the_number_asked(lead, question, evidence.idf):
        # A nearby number would read as the answer, even labelled as related ("48 hours" for a healing time): none.
        return Selection(unanswered="uncovered:number")
    wanted = 1 + settings.points if limit is None else limit
    chosen = [lead]
    floor = max(settings.min_relevance, lead.relevance * settings.relative_relevance)
    said = set(question.own) | set(lead.words)
    for unit in sorted(saying, key=lambda u: -u.relevance):
        if len(chosen) >= wanted or unit.relevance < floor:
            break
        if unit is lead or any(unit.overlaps(c) for c in chosen):
            continue
        if not judge.keeps(PointCandidate(unit, lead, question, frozenset(said)), evidence.idf):
            continue  # says again what is said already, or is true but not about what was asked
        chosen.append(unit)
        said |= unit.words
    rest = sorted(chosen[1:], key=lambda u: (u.passage_rank, u.start))
    return Selection(claims=tuple(u.claim() for u in [lead, *rest]), related=related)


def _may_be_related(unit: Candidate, question: Question) -> bool:
    """Whether ``unit`` may be offered as what the articles say that is related to a question they don't answer.

    It must say something (no framing, no fragment) and name something the question is about beyond what every
    question here names: for "what shoes for leg press?" the article's opening line about the machine is close
    in meaning but says nothing about shoes, and no quote is better than an unrelated one.
    """
    fragment = len(unit.text) < 30 and len(unit.sentences) == 1
    return not (fragment or is_framing(unit.text)) and bool(question.focus & unit.words)


def select_claims(
    query_vector: np.ndarray,
    query_words: set[str],
    evidence: Evidence,
    settings: ComposeSettings,
    *,
    limit: int | None = None,
) -> tuple[Claim, ...]:
    """The claims for a question known only by its words (no kind of answer asked for)."""
    return select(query_vector, Question(words=query_words, own=query_words), evidence, settings, limit=limit).claims
