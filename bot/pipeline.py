"""The answer chain: screen → retrieve → triage → compose → guard → disclaimer, as one LangChain runnable.

Each stage is a thin step over a pure function of its own module; this file only wires them and adds the
disclaimer — in ``_finish``, the one step every path goes through.
"""

from __future__ import annotations

import queue
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from threading import Lock, Thread
from typing import Any

import numpy as np
from langchain_core.runnables import Runnable, RunnableBranch, RunnableLambda
from pydantic import TypeAdapter, ValidationError

from bot.compose import (
    ComposeSettings,
    Draft,
    Evidence,
    RankedPassage,
    escalation_intro,
    fixed_reply,
    render,
    select_claims,
)
from bot.guard import guard
from bot.index import Index, open_index, quotable_sentences
from bot.lexical import content_words, inverse_document_frequencies
from bot.query import Query, build_query, load_synonyms
from bot.retrieval import DenseRetriever, HybridRetriever, LexicalRetriever, SentenceRetriever
from bot.settings import Settings, get_settings
from bot.triage import Verdict, classify, counted_thing, screen_input, states_count
from bot.types import Answer, Citation, Message, Passage, Status

DISCLAIMER = (
    "This is general information from fitness articles, not medical advice. If pain is severe, "
    "persists or worries you, see a doctor or physical therapist."
)
_HISTORY = TypeAdapter(list[Message])
_CANDIDATES_PER_RETRIEVER = 20
#: Searches remembered per engine: the index does not change while an engine is loaded.
_RETRIEVAL_CACHE_SIZE = 1024
#: Each dense view counts fully, BM25 (normalised to its best match) half: calibrated on eval/sets/core.yaml.
RETRIEVER_WEIGHTS = {"text": 1.0, "headed": 1.0, "sentences": 1.0, "lexical": 0.5}


@dataclass
class Turn:
    """Everything the chain knows about one question as it moves through the stages."""

    question: str
    history: list[Message]
    started: float = field(default_factory=time.perf_counter)
    verdict: Verdict | None = None
    query: Query | None = None
    passages: list[RankedPassage] = field(default_factory=list)
    query_vector: np.ndarray | None = None
    sentence_vectors: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    draft: Draft = field(default_factory=Draft)
    timings: dict[str, float] = field(default_factory=dict)
    #: Receives the reply text piece by piece as it becomes final (``Engine.stream`` listens here).
    on_delta: Callable[[str], None] | None = None


def _timed(name: str, step: Callable[[Turn], Turn]) -> Runnable[Turn, Turn]:
    def run(turn: Turn) -> Turn:
        started = time.perf_counter()
        result = step(turn)
        result.timings[name] = round((time.perf_counter() - started) * 1000, 3)
        return result

    return RunnableLambda(run, name=name)


def answer_deltas(text: str) -> Iterator[str]:
    """The reply text in the pieces a reader sees arrive: one line (a claim, a point) at a time.

    Blank lines travel with the line before them, so the pieces concatenate to exactly ``text``.
    """
    piece = ""
    for line in text.splitlines(keepends=True):
        if piece and line.strip():
            yield piece
            piece = ""
        piece += line
    if piece:
        yield piece


def parse_history(history: Iterable[Any] | None) -> list[Message] | None:
    """Conversation turns as messages, or ``None`` when they are not in the documented form."""
    if history is None:
        return []
    try:
        return [m if isinstance(m, Message) else Message.model_validate(m) for m in history]
    except (ValidationError, TypeError):
        return None


class Engine:
    """Loaded resources (model, index, retrievers) and the chain that answers with them."""

    def __init__(self, settings: Settings, index: Index, embeddings: Any) -> None:
        self.settings = settings
        self.index = index
        self.embeddings = embeddings
        self.synonyms = load_synonyms(settings.resolved_synonyms_file)
        self.compose_settings = ComposeSettings(points=settings.answer_points)
        texts = {chunk_id: chunk.text for chunk_id, chunk in index.chunks.items()}
        candidates = _CANDIDATES_PER_RETRIEVER
        self.retriever = HybridRetriever(
            retrievers={
                "text": DenseRetriever(store=index.stores["text"], k=candidates),
                "headed": DenseRetriever(store=index.stores["headed"], k=candidates),
                "sentences": SentenceRetriever(store=index.stores["sentences"], k=candidates),
                "lexical": LexicalRetriever(index=index.lexical, texts=texts, k=candidates),
            },
            weights=RETRIEVER_WEIGHTS,
            k=max(settings.top_k, self.compose_settings.depth),
        )
        self._sentence_words: dict[tuple[str, int], set[str]] = {}
        self._searches: OrderedDict[str, tuple[list[RankedPassage], dict[tuple[str, int], np.ndarray]]] = OrderedDict()
        self._searches_lock = Lock()
        self._idf = inverse_document_frequencies(content_words(c.text) for c in index.chunks.values())

        self.chain = self._build_chain()

    @classmethod
    def load(cls, settings: Settings | None = None, *, show_progress: bool = False) -> Engine:
        """Load the model and open (building or refreshing if needed) the index: seconds, so do it once."""
        from bot.embedding import load_embeddings

        settings = settings or get_settings()
        embeddings = load_embeddings(settings.embedding_model)
        return cls(settings, open_index(settings, embeddings, show_progress=show_progress), embeddings)

    def _build_chain(self) -> Runnable[Turn, Answer]:
        answer_from_passages = (
            _timed("retrieve", self._retrieve)
            | _timed("triage", self._triage)
            | _timed("compose", self._compose)
            | _timed("guard", self._guard)
        )
        return (
            _timed("screen", self._screen)
            | RunnableBranch(
                (lambda turn: turn.verdict is not None, _timed("compose", self._compose)), answer_from_passages
            )
            | RunnableLambda(self._finish, name="disclaimer")
        )

    # -- stages ---------------------------------------------------------------------------------

    def _screen(self, turn: Turn) -> Turn:
        if turn.verdict is None:  # a shell may already have rejected the request itself
            turn.verdict = screen_input(turn.question, max_chars=self.settings.max_question_chars)
        return turn

    def _retrieve(self, turn: Turn) -> Turn:
        history = turn.history[-self.settings.max_history_messages :] if self.settings.max_history_messages else []
        turn.query = build_query(turn.question, history, self.synonyms)
        if not turn.query.search_text:  # nothing but instructions to the bot: nothing to search for
            return turn
        passages, turn.sentence_vectors = self._search(turn.query.search_text)
        turn.passages = list(passages)
        turn.query_vector = self._query_vector(turn.query)
        return turn

    def _triage(self, turn: Turn) -> Turn:
        assert turn.query is not None
        best = max((p.dense_score or 0.0 for p in turn.passages), default=0.0)  # closest sentence or passage
        turn.verdict = classify(turn.query, best_similarity=best)
        return turn

    def _compose(self, turn: Turn) -> Turn:
        verdict = turn.verdict
        assert verdict is not None
        if verdict.status not in {Status.answered, Status.escalated}:
            turn.draft = fixed_reply(verdict)
            return turn
        claims = self._claims(turn, limit=2 if verdict.status is Status.escalated else None)
        if verdict.status is Status.escalated:
            turn.draft = Draft(intro=escalation_intro(verdict), claims=claims,
                               claims_heading="What the article says that may still help:")  # fmt: skip
        elif claims and self._answers_count(turn, claims):
            turn.draft = Draft(claims=claims)
        else:
            turn.verdict = Verdict(Status.not_found, "low_relevance")
            turn.draft = fixed_reply(turn.verdict)
        return turn

    def _guard(self, turn: Turn) -> Turn:
        turn.draft = guard(turn.draft, {p.chunk.chunk_id: p.chunk for p in turn.passages})
        if turn.verdict is not None and turn.verdict.status is Status.answered and not turn.draft.claims:
            turn.verdict = Verdict(Status.not_found, "unsupported")
            turn.draft = fixed_reply(turn.verdict)
        return turn

    def _finish(self, turn: Turn) -> Answer:
        assert turn.verdict is not None
        body, cited = render(turn.draft, {p.chunk.chunk_id: p.chunk for p in turn.passages})
        citations = [
            Citation(
                n=n, chunk_id=chunk.chunk_id, doc_id=chunk.doc_id, title=chunk.title, section=chunk.section_path,
                text=chunk.text, quote=chunk.text[start - chunk.start : end - chunk.start], start=start, end=end,
            )
            for n, chunk, start, end in cited
        ]  # fmt: skip
        passages = [
            Passage(
                chunk_id=p.chunk.chunk_id, doc_id=p.chunk.doc_id, section=p.chunk.section_path, text=p.chunk.text,
                score=round(p.score, 6), dense_score=p.dense_score, lexical_score=p.lexical_score,
                start=p.chunk.start, end=p.chunk.end,
            )
            for p in turn.passages[: self.settings.top_k]
        ]  # fmt: skip
        text = f"{body}\n\n---\n{DISCLAIMER}"
        if turn.on_delta is not None:
            for delta in answer_deltas(text):
                turn.on_delta(delta)
        turn.timings["total"] = round((time.perf_counter() - turn.started) * 1000, 3)
        for stage in ("retrieve", "compose"):
            turn.timings.setdefault(stage, 0.0)
        return Answer(
            question=turn.question,
            status=turn.verdict.status,
            answer=text,
            disclaimer=DISCLAIMER,
            citations=citations,
            passages=passages,
            timings_ms=turn.timings,
            reason=turn.verdict.reason,
        )

    # -- helpers --------------------------------------------------------------------------------

    def _search(self, text: str) -> tuple[list[RankedPassage], dict[tuple[str, int], np.ndarray]]:
        """The fused passages for a search text and their sentences' vectors, remembered for repeat questions.

        The vector-store queries are most of an answer's cost; a question asked again (the page's examples,
        the common ones) reuses the result, like the query-vector cache in ``bot.embedding``.
        """
        with self._searches_lock:
            if text in self._searches:
                self._searches.move_to_end(text)
                return self._searches[text]
        documents = self.retriever.invoke(text)
        passages = [
            RankedPassage(
                self.index.chunks[doc.id],
                doc.metadata["score"],
                max(doc.metadata.get(f"{view}_score", -1.0) for view in ("text", "headed", "sentences")),
                doc.metadata.get("lexical_score"),
            )
            for doc in documents
            if doc.id in self.index.chunks
        ]
        found = (passages, self._sentence_vectors(passages[: self.compose_settings.depth]))
        with self._searches_lock:
            self._searches[text] = found
            if len(self._searches) > _RETRIEVAL_CACHE_SIZE:
                self._searches.popitem(last=False)
        return found

    def cache_clear(self) -> None:
        """Forget remembered searches and query vectors (benchmarks measure the work, not the caches)."""
        with self._searches_lock:
            self._searches.clear()
        if hasattr(self.embeddings, "cache_clear"):
            self.embeddings.cache_clear()

    def _sentence_vectors(self, passages: list[RankedPassage]) -> dict[tuple[str, int], np.ndarray]:
        ids = {}
        for passage in passages:
            for sid, sentence in quotable_sentences(passage.chunk):
                ids[sid] = (passage.chunk.chunk_id, passage.chunk.sentences.index(sentence))
        if not ids:
            return {}
        found = self.index.stores["sentences"].get(ids=list(ids), include=["embeddings"])  # type: ignore[attr-defined]
        return {
            ids[sid]: np.asarray(vector, dtype=np.float32)
            for sid, vector in zip(found["ids"], found["embeddings"], strict=True)
        }

    def _words(self, turn: Turn) -> Mapping[tuple[str, int], set[str]]:
        for passage in turn.passages[: self.compose_settings.depth]:
            for position, sentence in enumerate(passage.chunk.sentences):
                key = (passage.chunk.chunk_id, position)
                if key not in self._sentence_words:
                    self._sentence_words[key] = content_words(passage.chunk.sentence_text(sentence))
        return self._sentence_words

    @staticmethod
    def _answers_count(turn: Turn, claims) -> bool:
        """A "how many …?" question is only answered if the quoted text puts a number on that thing."""
        assert turn.query is not None
        thing = counted_thing(turn.query.asked)
        return thing is None or any(states_count(claim.text, thing) for claim in claims)

    def _query_vector(self, query: Query) -> np.ndarray:
        """The question's vector; a follow-up leans on its own words more than on the turn it continues."""
        vector = np.asarray(self.embeddings.embed_query(query.search_text), dtype=np.float32)
        if query.is_follow_up:
            vector = vector + np.asarray(
                self.embeddings.embed_query(self.synonyms.expand(query.asked)), dtype=np.float32
            )
            vector /= np.linalg.norm(vector) or 1.0
        return vector

    def _claims(self, turn: Turn, *, limit: int | None):
        if turn.query is None or turn.query_vector is None:
            return ()
        depth = self.compose_settings.depth
        evidence = Evidence(turn.passages[:depth], turn.sentence_vectors, self._words(turn), self._idf)
        words = content_words(turn.query.search_text)
        return select_claims(turn.query_vector, words, evidence, self.compose_settings, limit=limit)

    # -- entry point ----------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """The engine's code version and the index build it answers from, e.g. ``0.1.0+index.3``."""
        from bot import __version__

        return f"{__version__}+index.{self.index.manifest.version}"

    @staticmethod
    def _turn(question: str, history: Iterable[Any] | None) -> Turn:
        text = question if isinstance(question, str) else ""
        messages = parse_history(history)
        turn = Turn(question=text, history=messages or [])
        if messages is None:
            turn.verdict = Verdict(Status.invalid, "history")
        return turn

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        """Answer one question in the context of the conversation so far."""
        return self.chain.invoke(self._turn(question, history))

    def stream(self, question: str, history: Iterable[Any] | None = None) -> Iterator[str | Answer]:
        """Like ``ask``, but yields the reply text in pieces as it becomes final, then the ``Answer``.

        The same chain runs (in a helper thread); its stages hand text to ``Turn.on_delta`` as soon as it is
        settled, so a composer that produces text gradually reaches the reader gradually. The pieces
        concatenate to ``Answer.answer``.
        """
        turn = self._turn(question, history)
        pieces: queue.SimpleQueue[str | Answer | BaseException] = queue.SimpleQueue()
        turn.on_delta = pieces.put

        def run() -> None:
            try:
                pieces.put(self.chain.invoke(turn))
            except BaseException as error:  # handed to the reader, who re-raises it
                pieces.put(error)

        Thread(target=run, name="bot-stream", daemon=True).start()
        while True:
            piece = pieces.get()
            if isinstance(piece, BaseException):
                raise piece
            yield piece
            if isinstance(piece, Answer):
                return

    def reject(self, question: str, reason: str) -> Answer:
        """The reply to a request a shell could not even read (``reason`` as in ``compose``'s messages)."""
        return self.chain.invoke(Turn(question=question, history=[], verdict=Verdict(Status.invalid, reason)))


_default_engine: Engine | None = None
_default_lock = Lock()


def get_engine() -> Engine:
    """The process-wide engine, loaded on first use."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = Engine.load()
        return _default_engine


def ask(question: str, history: Iterable[Any] | None = None) -> Answer:
    """Answer ``question`` (with optional ``history`` of ``{"role", "content"}`` turns) from the corpus."""
    return get_engine().ask(question, history)


def replace_turn(turn: Turn, **changes: Any) -> Turn:
    """A copy of ``turn`` with ``changes`` (for tests that drive single stages)."""
    return replace(turn, **changes)
