"""What the composer may quote, seen against the question: the sentences of the best passages as candidates.

Each candidate is one quotable sentence (or an anaphoric pair) with how close it is to the question in meaning
and in words, the headings it sits under and whether it opens its passage — what the lead ranker and the point
judge weigh (``select``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.content.documents import Chunk, Sentence
from bot.language.quantities import counted_thing, states_count
from bot.language.questions import Asked, Kind, Unit, states_unit
from bot.language.words import content_words
from bot.stages.state import Claim, RankedPassage, SentenceKey, Support

# Case-sensitive on purpose: "It" opens an anaphoric sentence, "IT band" does not.
_ANAPHORIC_START = re.compile(r"^(This|These|That|Those|It|They)\b")
_LABEL = re.compile(r"^\s*[-*+]\s+\*\*(?P<label>[^*]+)\*\*\s*$")

#: Words every question about knees and the gym uses: they say nothing about what in particular is asked. (The
#: subject of the articles a question finds — their titles' words — is added per question.)
GENERIC_WORDS = content_words(
    "knee knees leg legs press pressing presses machine pain painful hurt hurts hurting ache aches aching "
    "sore day days after workout workouts gym training train lift lifting exercise exercises do doing get gets "
    "getting use using make makes making good bad really always sometimes thing things way time"
)
#: Irregular plurals the stemmer leaves apart ("feet" and "Foot Placement" are about the same thing).
_LEMMAS = {"feet": "foot"}


def lemmas(words: set[str] | frozenset[str]) -> set[str]:
    """Stemmed words with irregular plurals folded (for matching questions to headings)."""
    return {_LEMMAS.get(word, word) for word in words}


def lemma_words(text: str) -> set[str]:
    """``content_words`` with irregular plurals folded."""
    return lemmas(content_words(text))


@dataclass(frozen=True)
class ComposeSettings:
    """How many sentences an answer quotes, how relevant they must be, and how the lead is weighed."""

    points: int = 3
    depth: int = 3
    min_relevance: float = 0.35
    relative_relevance: float = 0.7
    #: Weight of the shared (IDF-weighted) words against the embedding similarity.
    lexical_weight: float = 0.3
    #: A point must say at least this much (IDF-weighted share of its words) that is not said already,
    point_novelty: float = 0.35
    #: hold this share of the member's own words of the question (IDF-weighted),
    point_focus: float = 0.2
    #: and be this relevant relative to the lead. Chosen on the sets: stricter rules cut padding further (a
    #: point holding none of a case's ``relevant`` spans) but drop key facts below core's floor of 0.9.
    point_relevance: float = 0.7


@dataclass(frozen=True)
class Evidence:
    """What the composer may quote: the ranked passages and their sentences' vectors and words."""

    passages: Sequence[RankedPassage]
    vectors: Mapping[SentenceKey, np.ndarray]
    words: Mapping[SentenceKey, set[str]]
    #: Inverse document frequency of each corpus word: rare shared words say more than common ones.
    idf: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Question:
    """What the composer knows of the question."""

    #: Content words searched for (the question in context, widened with the article's words).
    words: set[str]
    #: What the question is about: its substantive searched words beyond those every question here uses.
    focus: set[str] = field(default_factory=set)
    #: The same for the member's own words in this turn ("the toes" in "and the toes?").
    own_focus: set[str] = field(default_factory=set)
    #: The member's own words in this turn: what a restating sentence repeats.
    own: set[str] = field(default_factory=set)
    asked: Asked = field(default_factory=lambda: Asked(Kind.other))
    #: The question as asked (for "how many …?" checks).
    text: str = ""
    #: Text already quoted in the conversation ("tell me more"): not quoted again.
    already_said: str = ""
    #: It continues an earlier question ("why not?"): its own words are not the whole question.
    follow_up: bool = False
    #: The reply before this turn, when it follows up on one.
    previous_reply: str = ""
    #: Words every question here uses: the generic ones and the subject of the articles found (their titles).
    generic: frozenset[str] = field(default_factory=lambda: frozenset(GENERIC_WORDS))


@dataclass(frozen=True)
class Candidate:
    """One or two neighbouring sentences quoted together, scored as a whole."""

    passage_rank: int
    chunk: Chunk
    sentences: tuple[Sentence, ...]
    relevance: float
    words: frozenset[str]
    #: Headings and list labels it sits under, as words.
    context_words: frozenset[str]
    text: str
    #: Closeness in meaning to the question in context, and to the member's own words in this turn.
    similarity: float = 0.0
    own_similarity: float = 0.0
    #: Its first sentence opens its passage (or the list label it sits under).
    opens: bool = False

    @property
    def start(self) -> int:
        """Where the quote starts in the document."""
        return self.sentences[0].start

    @property
    def end(self) -> int:
        """Where the quote ends in the document."""
        return self.sentences[-1].end

    def overlaps(self, other: Candidate) -> bool:
        """Whether the two quote some of the same text."""
        return self.chunk.doc_id == other.chunk.doc_id and self.start < other.end and other.start < self.end

    def claim(self) -> Claim:
        """The candidate as a claim of the answer."""
        return Claim(
            self.text, (Support(self.chunk.chunk_id, self.start, self.end),), is_list=self.sentences[-1].is_list
        )


def weighted_share(wanted: set[str], words: set[str] | frozenset[str], idf: Mapping[str, float]) -> float:
    """Share of ``wanted`` (IDF-weighted) that ``words`` contains."""
    total = sum(idf.get(w, 0.0) for w in wanted)
    return sum(idf.get(w, 0.0) for w in wanted & words) / total if total else 0.0


def novelty(words: set[str] | frozenset[str], said: set[str] | frozenset[str], idf: Mapping[str, float]) -> float:
    """Share of a sentence's words (IDF-weighted, generic ones aside) that ``said`` does not contain."""
    own = set(words) - GENERIC_WORDS
    return 1.0 - weighted_share(own, said, idf) if own else 0.0


def _label_before(chunk: Chunk, position: int) -> str:
    """The list label (``- **Foot Placement**``) a sentence sits under within its chunk, if any."""
    for sentence in reversed(chunk.sentences[:position]):
        if match := _LABEL.match(chunk.sentence_text(sentence)):
            return match.group("label")
        if sentence.quotable and not chunk.sentence_text(sentence).lstrip().startswith(("-", "*", "+")):
            return ""  # prose between: the label does not reach this far
    return ""


def candidate_units(
    question: Question,
    evidence: Evidence,
    settings: ComposeSettings,
    query_vector: np.ndarray,
    own_vector: np.ndarray | None = None,
) -> list[Candidate]:
    """Every quotable sentence (or anaphoric pair) of the best passages, with its relevance to the question."""
    units = []
    for rank, passage in enumerate(evidence.passages[: settings.depth]):
        chunk = passage.chunk
        headings = lemma_words(" ".join(chunk.section) + " " + chunk.context)
        for position, sentence in enumerate(chunk.sentences):
            key = (chunk.chunk_id, position)
            if not sentence.quotable or key not in evidence.vectors:
                continue
            text = chunk.sentence_text(sentence)
            span: tuple[Sentence, ...] = (sentence,)
            words = lemmas(evidence.words.get(key, set()))
            previous = chunk.sentences[position - 1] if position else None
            if _ANAPHORIC_START.match(text) and previous is not None and previous.quotable and not previous.is_list:
                # "This prevents overloading the joints." only makes sense after the sentence it points to.
                span = (previous, sentence)
                words |= lemmas(evidence.words.get((chunk.chunk_id, position - 1), set()))
            overlap = weighted_share(question.words, words, evidence.idf)
            similarity = float(evidence.vectors[key] @ query_vector)
            relevance = similarity + settings.lexical_weight * overlap + 0.05 / (rank + 1)
            if len(text) < 30 and len(span) == 1:
                relevance -= 0.1  # a fragment reads badly on its own
            label_text = _label_before(chunk, position)
            whole = " ".join(chunk.sentence_text(s) for s in span)
            own = float(evidence.vectors[key] @ own_vector) if own_vector is not None else similarity
            first = next((i for i, s in enumerate(chunk.sentences) if s.quotable), None)
            opens = span[0] is chunk.sentences[first] if first is not None else False
            units.append(
                Candidate(
                    rank,
                    chunk,
                    span,
                    relevance,
                    frozenset(words),
                    frozenset(headings | lemma_words(label_text)),
                    whole,
                    similarity,
                    own,
                    opens or bool(label_text and _label_before(chunk, position - 1) != label_text),
                )
            )
    return units


def answers_number(unit: Candidate, question: Question) -> bool:
    """Whether the unit states the number a number question asks for (for counts: of the thing counted)."""
    unit_asked = question.asked.unit
    if unit_asked is None:
        return False
    if unit_asked is Unit.repetitions:
        thing = counted_thing(question.text)
        return states_count(unit.text, thing) if thing else states_unit(unit.text, Unit.repetitions)
    return states_unit(unit.text, unit_asked)


def repeats_previous(unit: Candidate, question: Question) -> bool:
    """Whether the unit was quoted in the reply this follow-up comes after."""
    return bool(question.previous_reply) and unit.text.split("\n")[0].strip() in question.previous_reply
