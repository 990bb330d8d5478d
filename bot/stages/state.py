"""What the stages pass along: the question read, the passages found, the verdict, the draft, the reply so far.

One ``AnswerState`` per request moves through the stages; each stage reads what earlier ones settled and
adds its own part. The small frozen records here are the stages' shared vocabulary.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from bot.cache import CountingLRU
from bot.content.documents import Chunk
from bot.contract import Message, Status
from bot.index import Index
from bot.index.retrievers import HybridRetriever
from bot.language.conversation import Intent


@dataclass(frozen=True)
class Verdict:
    """Triage's decision: the status, a machine-readable reason and, for red flags, the warning's symptom."""

    status: Status
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Query:
    """One question as read: without instructions to the bot, resolved against the conversation, ready to search."""

    question: str
    #: The question without sentences that try to instruct the bot (empty if that was all it was).
    asked: str
    #: ``asked`` with the conversation it continues, when it is a follow-up.
    standalone: str
    #: ``standalone`` plus the article's words for the user's words (see ``synonyms.yaml``).
    search_text: str
    is_follow_up: bool = False
    #: A chat model's standalone version of a follow-up: searched for and answered, never triaged.
    rewritten: str | None = None
    #: What kind of turn this is: a question, or a conversational turn (a greeting, "tell me more", …).
    intent: Intent = Intent.question
    #: A short turn right after a question about the knee, with nothing off-topic in it: it stays in scope.
    continues_topic: bool = False
    #: For "tell me more": the reply it continues, whose quotes are not repeated.
    already_said: str = ""
    #: For a follow-up: the reply before it ("what about after?" rarely wants the same sentence again).
    previous_reply: str = ""


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
    #: The heading or list label an overview's line names before the quote ("Improper Form and Technique").
    label: str = ""


@dataclass(frozen=True)
class Draft:
    """A reply before rendering: fixed wording around the claims."""

    intro: str = ""
    claims: tuple[Claim, ...] = ()
    claims_heading: str = ""
    #: The claims are an overview: one line per item of a list or section, each with its label.
    outline: bool = False
    #: The claims do not answer the question; they are the closest things the articles do say.
    related: bool = False


SentenceKey = tuple[str, int]
"""A sentence by its chunk id and position in the chunk (content-addressed: never stale)."""

Search = tuple[list[RankedPassage], dict[SentenceKey, np.ndarray]]
"""What one search text found: the fused passages and the vectors of their quotable sentences."""


@dataclass(frozen=True)
class Snapshot:
    """One version of the index with the retriever over it; a request keeps the one it arrived with."""

    index: Index
    retriever: HybridRetriever
    #: Searches by search text, valid for this version only.
    searches: CountingLRU[Search]

    @property
    def version(self) -> int:
        """The index version this snapshot serves."""
        return self.index.manifest.version


@dataclass
class AnswerState:
    """Everything known about one question as it moves through the stages."""

    question: str
    history: list[Message]
    #: The index version this question is answered from, fixed when it arrives.
    snapshot: Snapshot | None = None
    started: float = field(default_factory=time.perf_counter)
    verdict: Verdict | None = None
    query: Query | None = None
    passages: list[RankedPassage] = field(default_factory=list)
    query_vector: np.ndarray | None = None
    #: The member's own words of this turn, embedded (a follow-up's "and the toes?"; else the query vector).
    own_vector: np.ndarray | None = None
    sentence_vectors: Mapping[SentenceKey, np.ndarray] = field(default_factory=dict)
    #: The extractive claims that answer the question (a chat model writes from these).
    facts: tuple[Claim, ...] = ()
    #: Why no sentence answers an in-scope question (``comparison``, ``number``, ``silent``), when none does.
    unanswered: str = ""
    draft: Draft = field(default_factory=Draft)
    #: Claims already sent to the reader as text: final, so no later stage may drop them.
    committed: int = 0
    #: The reply text sent so far, piece by piece; the final reply starts with exactly these pieces.
    sent: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    composer: str = "extractive"
    removed_sentences: int = 0
    fallback: str | None = None

    @property
    def status(self) -> Status | None:
        """The status triage (or screening) decided, if any yet."""
        return self.verdict.status if self.verdict is not None else None

    def chunks(self) -> dict[str, Chunk]:
        """The retrieved passages by chunk id (what the guard and the renderer check claims against)."""
        return {p.chunk.chunk_id: p.chunk for p in self.passages}

    def elapsed_ms(self) -> float:
        """Milliseconds since the question arrived."""
        return round((time.perf_counter() - self.started) * 1000, 3)
