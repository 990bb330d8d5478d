"""Hybrid retrieval: the dense views (vector stores) and BM25, fused into one ranking.

Every retriever is a LangChain ``BaseRetriever`` returning documents whose ``id`` is a chunk id and whose
``metadata["score"]`` is its own score (higher is better), so they can be swapped, combined and tested by
one contract. The vector retrievers return ids and scores only; the hybrid one reads the text of the passages
it returns from the passages it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, SkipValidation

from bot.content.documents import Chunk
from bot.index.fusion import linear_fusion
from bot.index.lexical import LexicalIndex
from bot.index.records import chunk_of_sentence, fetch_passages
from bot.index.store import VectorStore
from bot.index.views import View

#: The run manager of a search nobody traces (``HybridRetriever.search``).
_NO_RUN = CallbackManagerForRetrieverRun.get_noop_manager()
#: Threads the hybrid retriever runs its retrievers on (all but one; that one runs in the caller's thread).
_FAN_OUT = ThreadPoolExecutor(max_workers=8, thread_name_prefix="retrieve")


class DenseRetriever(BaseRetriever):
    """Nearest chunks in one vector store by cosine similarity (ids and scores; no text)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: VectorStore
    embeddings: Embeddings
    k: int = Field(20, ge=1)

    def ranked(self, query: str) -> list[tuple[str, float]]:
        """``(chunk_id, score)`` pairs, best first: what the documents say, without making them."""
        return self.store.query(self.embeddings.embed_query(query), self.k)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [
            Document(id=chunk_id, page_content="", metadata={"score": score}) for chunk_id, score in self.ranked(query)
        ]


class SentenceRetriever(BaseRetriever):
    """Chunks ranked by their single best-matching sentence (ids and scores; no text)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: VectorStore
    embeddings: Embeddings
    k: int = Field(20, ge=1)
    sentences: int = Field(40, ge=1, description="How many nearest sentences to look at.")

    def _best(self, query: str) -> list[tuple[str, float, str]]:
        best: dict[str, tuple[str, float, str]] = {}
        for sid, score in self.store.query(self.embeddings.embed_query(query), self.sentences):
            chunk_id = chunk_of_sentence(sid)
            if chunk_id not in best:  # results come nearest first
                best[chunk_id] = (chunk_id, score, sid)
        return list(best.values())[: self.k]

    def ranked(self, query: str) -> list[tuple[str, float]]:
        """``(chunk_id, score)`` pairs, best first: what the documents say, without making them."""
        return [(chunk_id, score) for chunk_id, score, _ in self._best(query)]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [
            Document(id=chunk_id, page_content="", metadata={"score": score, "sentence_id": sid})
            for chunk_id, score, sid in self._best(query)
        ]


class LexicalRetriever(BaseRetriever):
    """Chunks by BM25 score over stemmed words."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: LexicalIndex
    k: int = Field(20, ge=1)

    def ranked(self, query: str) -> list[tuple[str, float]]:
        """``(chunk_id, score)`` pairs, best first: what the documents say, without making them."""
        return [(chunk_id, score) for chunk_id, score, _ in self.index.search(query, self.k)]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [
            Document(id=chunk_id, page_content=text, metadata={"score": score})
            for chunk_id, score, text in self.index.search(query, self.k)
        ]


class HybridRetriever(BaseRetriever):
    """Runs one retriever per view on the same query and fuses their rankings into the served passages.

    Only passages ``passages`` lists are returned (a build in progress may have written newer ones beside
    them), each with its text and every view's own score under ``View.score_key`` (``text_score``, …).
    ``passages`` is any mapping of chunk ids to chunks; one with a ``fetch(ids)`` method (the index's
    passage table) is read with one call for all the returned passages.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retrievers: dict[View, BaseRetriever]
    #: Not validated: a passage table reads the store for each value, and must not be copied into a dict.
    passages: SkipValidation[Mapping[str, Chunk]]
    k: int = Field(5, ge=1)
    weights: dict[View, float] = Field(default_factory=dict)
    #: Views whose scores are unbounded and get normalised before fusion.
    normalize: frozenset[View] = frozenset({View.lexical})

    def search(self, query: str) -> list[tuple[str, float, dict[str, float]]]:
        """The fused passages as ``(chunk_id, fused score, {view score key: own score})``, best first.

        What ``invoke`` finds, for the answer path, which reads the passages itself: no LangChain callback
        manager and run per retriever (about 0.4 ms each on a busy machine), no ``Document`` per candidate
        (some 70 per question), no passage read. ``invoke`` still reports every retriever's run to a tracer.
        """

        def rank(view: View) -> list[tuple[str, float]]:
            retriever = self.retrievers[view]
            if isinstance(retriever, DenseRetriever | SentenceRetriever | LexicalRetriever):
                return retriever.ranked(query)
            docs = retriever._get_relevant_documents(query, run_manager=_NO_RUN)
            return [(d.id, d.metadata["score"]) for d in docs if d.id]

        return self._fused(rank)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        def rank(view: View) -> list[tuple[str, float]]:
            docs = self.retrievers[view].invoke(query, config={"callbacks": run_manager.get_child(view.value)})
            return [(d.id, d.metadata["score"]) for d in docs if d.id]

        best = self._fused(rank)
        found = fetch_passages(self.passages, (chunk_id for chunk_id, _, _ in best))
        return [
            Document(id=chunk_id, page_content=found[chunk_id].text, metadata={"score": score, **own})
            for chunk_id, score, own in best
            if chunk_id in found
        ]

    def _fused(self, rank: Callable[[View], list[tuple[str, float]]]) -> list[tuple[str, float, dict[str, float]]]:
        # The vector queries wait on the store (a server's HTTP round trip, or Rust code that frees the GIL):
        # run them side by side with BM25. The query is embedded once; the other retrievers wait for the vector.
        *others, last = self.retrievers
        running = [_FAN_OUT.submit(rank, view) for view in others]
        mine = rank(last)
        rankings = dict(zip(self.retrievers, [*(future.result() for future in running), mine], strict=True))
        fused = linear_fusion(rankings, weights=self.weights, normalize=self.normalize)
        own: dict[str, dict[str, float]] = {}
        for view, ranking in rankings.items():
            for chunk_id, score in ranking:
                own.setdefault(chunk_id, {})[view.score_key] = score
        return [(chunk_id, score, own[chunk_id]) for chunk_id, score in fused if chunk_id in self.passages][: self.k]
