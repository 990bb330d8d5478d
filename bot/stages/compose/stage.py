"""The compose stage: the draft the verdict calls for — an answer, an escalation, a chat reply or a fixed one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from bot import policy
from bot.cache import CountingLRU
from bot.content.documents import Chunk
from bot.content.synonyms import Synonyms
from bot.contract import Status
from bot.language.conversation import Intent
from bot.language.questions import Asked, Kind, asked_for, asked_in_continuation
from bot.language.vocabulary import FUNCTION_WORDS
from bot.language.words import content_words
from bot.stages.compose.candidates import GENERIC_WORDS, ComposeSettings, Evidence, Question, lemma_words, lemmas
from bot.stages.compose.care import care_guidance
from bot.stages.compose.coverage import compared_terms, makes_comparison, saliences, unknown_words
from bot.stages.compose.outline import outline
from bot.stages.compose.ranking import default_ranker
from bot.stages.compose.replies import ArticleInfo, chat_reply, fixed_reply
from bot.stages.compose.select import ByRules, PointJudge, Ranker, Selection, select
from bot.stages.query import substantive_words
from bot.stages.state import AnswerState, Claim, Draft, Query, RankedPassage, SentenceKey
from bot.stages.triage import without_negated_symptoms

#: Kinds of question whose words say what must be covered: an unknown word there is what the articles lack.
_SILENT_KINDS = frozenset({Kind.stance, Kind.other, Kind.definition, Kind.number, Kind.instruction, Kind.place})
_FUNCTION_STEMS = content_words(" ".join(sorted(FUNCTION_WORDS)))
#: How much of the question's meaning a word the articles never use must carry to be what it is about.
_SALIENT = 0.1
#: A longer question may carry incidental words of the member's own ("at my crossfit box"): not judged by them.
_MAX_WORDS_FOR_SILENCE = 14


class Compose:
    """Writes the draft: quoted sentences for an answer or an escalation, the fixed wording for everything else."""

    name = "compose"

    def __init__(
        self,
        settings: ComposeSettings,
        *,
        synonyms: Synonyms,
        articles: Callable[[], list[ArticleInfo]],
        chunks_of: Callable[[AnswerState, str], list[Chunk]],
        embed_many: Callable[[list[str]], Sequence[np.ndarray]],
        ranker: Ranker | None = None,
        judge: PointJudge | None = None,
        word_cache_size: int = 8192,
    ) -> None:
        """``ranker`` chooses the lead and ``judge`` the points (default: the shipped trained models)."""
        self.settings = settings
        self.ranker = ranker or default_ranker()
        self.judge = judge or ByRules(settings)
        self.embed_many = embed_many
        self.synonyms = synonyms
        self.articles = articles
        self.chunks_of = chunks_of
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
            chunks_of = partial(self.chunks_of, state)
            guidance = care_guidance(state.passages, chunks_of, limit=1) if state.snapshot else ()
            state.passages = _with_passages_of(state.passages, guidance, chunks_of)
            state.draft = Draft(
                intro=policy.escalation_warning(verdict.detail),
                claims=guidance,
                claims_heading=policy.ESCALATION_GUIDANCE_HEADING,
            )
        elif verdict.status is Status.answered:
            self._answer(state)
        elif verdict.status is Status.chat:
            state.draft = chat_reply(verdict.reason, self.articles)
        else:
            state.draft = fixed_reply(verdict)
        return state

    def _answer(self, state: AnswerState) -> None:
        assert state.query is not None
        question = self.question(state.query, state.passages)
        overview = outline(question, state.passages, partial(self.chunks_of, state)) if state.snapshot else ()
        if overview:
            state.passages = _with_passages_of(state.passages, overview, partial(self.chunks_of, state))
            state.facts, state.draft = overview, Draft(claims=overview, outline=True)
            return
        selection = self.selection(state, limit=None, question=question)
        unanswered = selection.unanswered or self._uncovered(state, question, selection)
        if question.already_said and not selection.claims:
            unanswered = "nothing_more"
        if unanswered:
            related = self._related(unanswered, question, selection)
            state.unanswered, state.facts, state.draft = unanswered, (), Draft(claims=related, related=True)
            return
        state.facts = selection.claims
        state.draft = Draft(claims=state.facts)

    @staticmethod
    def _related(unanswered: str, question: Question, selection: Selection) -> tuple[Claim, ...]:
        """The closest thing the articles say (if anything): for a comparison, a sentence naming a thing compared."""
        if unanswered == "uncovered:comparison" and (terms := compared_terms(question.text)):
            compared = set().union(*terms)
            specific = compared - question.generic
            naming = [c for c in selection.related if specific & content_words(c.text)]
            # The one that names the most of what is compared; none if nothing names it ("better than" alone is
            # not about the smith machine).
            return (max(naming, key=lambda c: len(compared & content_words(c.text))),) if naming else ()
        return selection.related[:1]

    def question(self, query: Query, passages: Sequence[RankedPassage] = ()) -> Question:
        """What the composer needs to know of the question (``passages``: those found, whose titles say its subject)."""
        generic = frozenset(GENERIC_WORDS | {w for p in passages[:3] for w in lemma_words(p.chunk.title)})
        more = query.intent is Intent.more
        asked = without_negated_symptoms(query.standalone if more else query.asked)
        kind = asked_for(asked)
        if query.is_follow_up and (magnitude := asked_in_continuation(asked, asked_for(query.standalone))):
            kind = magnitude  # "by how much?" after "should my toes point out?": the degrees
        elif kind.kind is Kind.other and query.is_follow_up:
            # "and rest?" after "how often?": the kind of the question it continues, but not its number —
            # the follow-up asks about something else.
            kind = Asked(asked_for(query.standalone).kind)
        if more:  # "tell me more" wants what else there is, not the number already given
            kind = Asked(kind.kind)
        return Question(
            words=lemmas(content_words(query.search_text)),
            focus=lemmas(substantive_words(query.search_text)) - generic,
            # Comparatives count here ("and what if I put them higher?" is about "higher"), and in a follow-up
            # even the subject's own words do: "and my knees?" after a question about the feet is about knees.
            own_focus=lemmas(content_words(asked)) - _FUNCTION_STEMS - (frozenset() if query.is_follow_up else generic),
            own=lemmas(substantive_words(asked)),
            asked=kind,
            text=asked,
            already_said=query.already_said,
            follow_up=query.is_follow_up,
            previous_reply=query.previous_reply,
            generic=generic,
        )

    def selection(self, state: AnswerState, *, limit: int | None, question: Question | None = None) -> Selection:
        """The sentences to quote for the question: a lead and the points that add to it."""
        if state.query is None or state.query_vector is None or state.snapshot is None:
            return Selection()
        question = question or self.question(state.query, state.passages)
        passages = state.passages[: self.settings.depth]
        words = self._words(passages)
        vocabulary = question.words | {w for sentence in words.values() for w in lemmas(sentence)}
        evidence = Evidence(passages, state.sentence_vectors, words, state.snapshot.index.lexical.idf(vocabulary))
        return select(
            state.query_vector,
            question,
            evidence,
            self.settings,
            limit=limit,
            ranker=self.ranker,
            judge=self.judge,
            own_vector=state.own_vector,
        )

    def _uncovered(self, state: AnswerState, question: Question, selection: Selection) -> str:
        """Why the best sentences don't answer the question, if they don't: ``comparison`` or ``silent``."""
        assert state.snapshot is not None
        if not selection.claims:
            return ""
        if (terms := compared_terms(question.text)) and not makes_comparison(terms, [c.text for c in selection.claims]):
            return "uncovered:comparison"
        if question.asked.kind in _SILENT_KINDS and len(question.text.split()) <= _MAX_WORDS_FOR_SILENCE:
            lexical = state.snapshot.index.lexical
            unknown = unknown_words(question.text, lambda stem: bool(lexical.idf([stem])), self._covered)
            # Cheap tests first: the saliences cost an embedding of the question without each word (one call).
            if (
                unknown
                and not _lead_covers_the_rest(question, selection, unknown)
                and max(saliences(_whole_question(state.query, question), unknown, self.embed_many)) >= _SALIENT
            ):
                return "uncovered:silent"
        return ""

    def _covered(self, word: str) -> bool:
        return self.synonyms.expand(word) != word

    def _words(self, passages: Sequence[RankedPassage]) -> dict[SentenceKey, set[str]]:
        words = {}
        for passage in passages:
            for position, sentence in enumerate(passage.chunk.sentences):
                key = (passage.chunk.chunk_id, position)
                text = passage.chunk.sentence_text(sentence)
                words[key] = self._sentence_words.get_or_compute(key, partial(content_words, text))
        return words


def _whole_question(query: Query | None, question: Question) -> str:
    """What a word's weight is judged against: a follow-up's words mean what they do in the question it continues.

    "what about if it hurts at the bottom?" after "how deep should I go?" is about the depth of the press; alone,
    "bottom" would carry most of the question's meaning. (Symptoms said to be absent are left out, as they are
    from the question as the composer reads it.)
    """
    assert query is not None
    return without_negated_symptoms(query.standalone) if query.is_follow_up else question.text


def _lead_covers_the_rest(question: Question, selection: Selection, unknown: list[str]) -> bool:
    """Whether the lead says what the rest of the question is about.

    "Do I drive through my toes or my heels?" is answered by "Press through the heels … rather than the toes",
    whatever "drive" means to the articles.
    """
    rest = question.own_focus - {stem for word in unknown for stem in content_words(word)}
    if not rest or not selection.claims:
        return False
    return len(rest & content_words(selection.claims[0].text)) / len(rest) >= 0.5


def _with_passages_of(
    passages: list[RankedPassage], claims: Sequence, chunks_of: Callable[[str], list[Chunk]]
) -> list[RankedPassage]:
    """The retrieved passages, followed by the passages an overview quotes that retrieval did not rank."""
    have = {p.chunk.chunk_id for p in passages}
    wanted = [s.chunk_id for claim in claims for s in claim.support if s.chunk_id not in have]
    if not wanted:
        return passages
    by_id = {c.chunk_id: c for p in passages for c in chunks_of(p.chunk.doc_id)}
    added = [RankedPassage(by_id[chunk_id], 0.0) for chunk_id in dict.fromkeys(wanted) if chunk_id in by_id]
    return [*passages, *added]
