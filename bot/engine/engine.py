"""The engine: the loaded model and index, the stages built over them, and ``ask`` / ``stream``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from threading import Lock
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from pydantic import ValidationError

from bot.cache import CountingLRU
from bot.content.corpus import load_corpus, require_articles
from bot.content.documents import Chunk
from bot.content.synonyms import load_synonyms
from bot.contract import Answer, Message, Status
from bot.engine.chain import AnswerChain, Piece
from bot.engine.versions import IndexVersions
from bot.index import Index, View, open_index
from bot.index.retrievers import DenseRetriever, HybridRetriever, LexicalRetriever, SentenceRetriever
from bot.models.batching import batcher_of
from bot.models.chat import EXTRACTIVE, ComposerUnavailable, load_chat_model
from bot.models.embedding import embeddings_for
from bot.settings import Settings, get_settings
from bot.stages.compose import Compose, ComposeSettings, not_found_reply
from bot.stages.finish import Finish
from bot.stages.generate import Generate
from bot.stages.guard import Guard, GuardSettings
from bot.stages.query import ReadQuestion
from bot.stages.retrieve import Retrieve
from bot.stages.rewrite import RewriteFollowUp
from bot.stages.screen import Screen
from bot.stages.state import AnswerState, Snapshot, Verdict
from bot.stages.triage import NarrowToNotFound, Triage
from bot.version import __version__

log = logging.getLogger(__name__)
#: Passage similarity counts fully, the best sentence's similarity and BM25 (normalised to its best match)
#: less; chosen from a stable plateau on eval/sets core + conversations (see docs/benchmarks.md).
RETRIEVER_WEIGHTS = {View.text: 1.0, View.sentences: 0.4, View.lexical: 0.25}


def parse_history(history: Iterable[Any] | None) -> list[Message] | None:
    """Conversation turns as messages, or ``None`` when they are not in the documented form."""
    if history is None:
        return []
    try:
        return [m if isinstance(m, Message) else Message.model_validate(m) for m in history]
    except (ValidationError, TypeError):
        return None


def _chat_model(settings: Settings) -> tuple[BaseChatModel | None, str, str | None]:
    """The configured chat model, its name, and why it is not used if it can't be (then: extractive)."""
    try:
        model = load_chat_model(settings)
    except ComposerUnavailable as error:
        log.error("%s Answering extractively.", error)
        return None, EXTRACTIVE, str(error)
    return model, (settings.composer if model is not None else EXTRACTIVE), None


class Engine:
    """One loaded embedding model and index, and the answer chain over them."""

    def __init__(
        self, settings: Settings, index: Index, embeddings: Embeddings, *, chat_model: BaseChatModel | None = None
    ) -> None:
        """``chat_model``: the model ``settings.composer`` names, already made (tests); else it is loaded."""
        self.settings = settings
        self.embeddings = embeddings
        self._batcher = batcher_of(embeddings)
        self.chat_model: BaseChatModel | None
        if chat_model is not None:
            self.chat_model, self.composer, self.composer_problem = chat_model, settings.composer, None
        else:
            self.chat_model, self.composer, self.composer_problem = _chat_model(settings)
        synonyms = load_synonyms(settings.resolved_synonyms_file)
        self._article_infos: list[tuple[str, str, str]] | None = None
        #: Each article's passages in reading order, by index version (overviews read whole articles).
        self._documents: CountingLRU[list[Chunk]] = CountingLRU(64)
        compose = ComposeSettings(points=settings.answer_points)
        self._retrieve = Retrieve(embeddings, synonyms, depth=compose.depth)
        # Enough passages for those shown and those quoted, plus a few: triage weighs the closest of them all.
        self._fused_k = max(settings.top_k, compose.depth) + settings.candidate_margin
        self.versions = IndexVersions(settings, index, self._snapshot_of)
        guard = GuardSettings(settings.guard_min_similarity, settings.guard_min_overlap)
        self.chain = AnswerChain(
            [
                Screen(max_chars=settings.max_question_chars),
                ReadQuestion(synonyms),
                self._retrieve,
                Triage(similarity_floor=settings.scope_similarity, answer_floor=settings.answer_similarity),
                RewriteFollowUp(self.chat_model, self._retrieve, synonyms),
                Compose(
                    compose,
                    synonyms=synonyms,
                    articles=self._articles,
                    chunks_of=self._chunks_of,
                    embed_many=self._retrieve.embed,
                ),
                Generate(
                    self.chat_model,
                    composer=self.composer,
                    embed=self._embed,
                    guard=guard,
                    timeout=settings.llm_timeout,
                ),
                Guard(guard),
                NarrowToNotFound(not_found_reply),
            ],
            Finish(top_k=settings.top_k),
        )

    @classmethod
    def load(
        cls, settings: Settings | None = None, *, embeddings: Embeddings | None = None, show_progress: bool = False
    ) -> Engine:
        """Load the model and open (building or refreshing if needed) the index: seconds, so do it once.

        ``embeddings``: an already loaded embedding model (the app loads it first, so that retries while the
        Chroma server is unreachable reuse it).
        """
        settings = settings or get_settings()
        # A missing or empty corpus fails before seconds of model loading. Articles are only parsed if the
        # index is out of date: parsing 1,000 of them at every start cost half a second.
        require_articles(settings.corpus_dir)
        if embeddings is None:
            embeddings = embeddings_for(settings)
        return cls(settings, open_index(settings, embeddings, show_progress=show_progress), embeddings)

    def _articles(self) -> list[tuple[str, str, str]]:
        """Each article's title, site and author (front matter), read once: what "who wrote this?" is told."""
        if self._article_infos is None:
            self._article_infos = [(a.title, a.site, a.author) for a in load_corpus(self.settings.corpus_dir)]
        return self._article_infos

    def _chunks_of(self, state: AnswerState, doc_id: str) -> list[Chunk]:
        """An article's passages in reading order, from the request's index version (for overviews)."""
        snapshot = state.snapshot
        assert snapshot is not None
        entry = snapshot.index.manifest.documents.get(doc_id)
        if entry is None:
            return []

        def read() -> list[Chunk]:
            found = snapshot.index.passages.fetch(entry.chunk_ids)
            return sorted(found.values(), key=lambda chunk: chunk.start)

        return self._documents.get_or_compute((snapshot.version, doc_id), read)

    def _snapshot_of(self, index: Index) -> Snapshot:
        k = self.settings.candidates_per_retriever
        retriever = HybridRetriever(
            retrievers={
                View.text: DenseRetriever(store=index.stores[View.text], embeddings=self.embeddings, k=k),
                View.sentences: SentenceRetriever(store=index.stores[View.sentences], embeddings=self.embeddings, k=k),
                View.lexical: LexicalRetriever(index=index.lexical, k=k),
            },
            passages=index.passages,
            weights=RETRIEVER_WEIGHTS,
            k=self._fused_k,
        )
        return Snapshot(index, retriever, CountingLRU(self.settings.cache_size))

    # -- answering ------------------------------------------------------------------------------------

    def new_state(self, question: str, history: Iterable[Any] | None) -> AnswerState:
        """A request's state: the question, its recent history, and the index version it is answered from."""
        messages = parse_history(history)
        self.refresh()
        recent = self.settings.max_history_messages
        state = AnswerState(
            question=question if isinstance(question, str) else "",
            history=(messages or [])[-recent:] if recent else [],
            snapshot=self.versions.current,
        )
        if messages is None:
            state.verdict = Verdict(Status.invalid, "history")
        return state

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        """Answer one question in the context of the conversation so far."""
        with self._answering():
            return self.chain.invoke(self.new_state(question, history))

    def stream(self, question: str, history: Iterable[Any] | None = None) -> Iterator[Piece]:
        """Like ``ask``, but yields the reply text in pieces as each becomes final, then the ``Answer``.

        The pieces concatenate to ``Answer.answer``; a composer that writes gradually reaches the reader gradually.
        """
        state = self.new_state(question, history)
        with self._answering():
            yield from self.chain.stream(state)

    def _answering(self) -> AbstractContextManager[None]:
        """An answer in progress: the embedding batcher waits (a moment) for its question while there are others."""
        return self._batcher.active() if self._batcher is not None else nullcontext()

    def reject(self, question: str, reason: str) -> Answer:
        """The reply to a request a shell could not even read (``reason`` as in ``bot.policy.INVALID``)."""
        state = AnswerState(question=question, history=[], verdict=Verdict(Status.invalid, reason))
        return self.chain.invoke(state)

    # -- what the shells and tools read ---------------------------------------------------------------

    @property
    def index(self) -> Index:
        """The index version currently served."""
        return self.versions.current.index

    @property
    def version(self) -> str:
        """The engine's code version and the index build it answers from, e.g. ``0.1.0+index.3``."""
        return f"{__version__}+index.{self.index.manifest.version}"

    def refresh(self, *, force: bool = False) -> bool:
        """Switch to a newer index version if a build has produced one (see ``IndexVersions.refresh``)."""
        return self.versions.refresh(force=force)

    @property
    def caches(self) -> dict[str, CountingLRU[Any]]:
        """The caches whose hit rates the metrics report: searches (this version) and query vectors."""
        caches: dict[str, CountingLRU[Any]] = {"retrieval": self.versions.current.searches}
        if isinstance(vectors := getattr(self.embeddings, "cache", None), CountingLRU):
            caches["query_vector"] = vectors
        return caches

    def cache_clear(self) -> None:
        """Forget remembered searches and query vectors (benchmarks measure the work, not the caches)."""
        self.versions.current.searches.clear()
        if callable(clear := getattr(self.embeddings, "cache_clear", None)):
            clear()

    def with_composer(self, spec: str) -> Engine:
        """This engine (same model and index) composing with ``spec``; itself if that is already its composer."""
        if spec == self.composer and self.composer_problem is None:
            return self
        return Engine(self.settings.model_copy(update={"composer": spec}), self.index, self.embeddings)

    def _embed(self, text: str) -> np.ndarray:
        return np.asarray(self.embeddings.embed_query(text), dtype=np.float32)


_default_engine: Engine | None = None
_default_lock = Lock()


def default_engine() -> Engine:
    """The process-wide engine, loaded on first use."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = Engine.load()
        return _default_engine
