"""Hybrid retrieval: several dense views (the vector stores) and BM25, fused into one ranking.

Every retriever is a LangChain ``BaseRetriever`` returning documents whose ``id`` is a chunk id and whose
``metadata["score"]`` is its own score (higher is better), so they can be swapped, combined and tested by
one contract. The vector retrievers return ids and scores only; the hybrid one reads the text of the passages
it returns from the index's passage table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from bot.index.core import ChunkTable, chunk_of_sentence
from bot.index.lexical import LexicalIndex

Ranking = Sequence[tuple[str, float]]

#: Threads the hybrid retriever runs its retrievers on (all but one; that one runs in the caller's thread).
_FAN_OUT = ThreadPoolExecutor(max_workers=8, thread_name_prefix="retrieve")


def reciprocal_rank_fusion(
    rankings: Mapping[str, Ranking], *, k: int = 60, weights: Mapping[str, float] | None = None
) -> list[tuple[str, float]]:
    """Fuse by rank: each ranking adds ``weight / (k + rank)`` to an id. Best first, ties broken by id."""
    scores: dict[str, float] = {}
    for name, ranking in rankings.items():
        weight = (weights or {}).get(name, 1.0)
        for rank, (item, _) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def linear_fusion(
    rankings: Mapping[str, Ranking],
    *,
    weights: Mapping[str, float] | None = None,
    normalize: frozenset[str] = frozenset(),
) -> list[tuple[str, float]]:
    """Fuse by score: a weighted sum of each ranking's scores. Best first, ties broken by id.

    Rankings named in ``normalize`` (unbounded scores such as BM25) are divided by their best score,
    and an id they do not list counts 0; an id missing from any other (truncated) ranking gets that
    ranking's lowest listed score, the most it could have had.
    """
    ids = {item for ranking in rankings.values() for item, _ in ranking}
    fused = dict.fromkeys(ids, 0.0)
    for name, ranking in rankings.items():
        if not ranking:
            continue
        weight = (weights or {}).get(name, 1.0)
        scores = dict(ranking)
        if name in normalize:
            top = max(scores.values())
            scores = {item: score / top for item, score in scores.items()} if top > 0 else {}
            floor = 0.0
        else:
            floor = min(scores.values())
        for item in ids:
            fused[item] += weight * scores.get(item, floor)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def nearest(collection: Any, vector: Sequence[float], k: int) -> list[tuple[str, float]]:
    """The ``k`` nearest ids in a Chroma collection with their cosine similarity, nearest first.

    Only ids and distances are asked for: fetching the documents and metadata too made each query 3× slower
    at 40k passages (1.3 → 3.6–4.4 ms), and the passages' text is in the index's passage table anyway.
    """
    found = collection.query(query_embeddings=[vector], n_results=k, include=["distances"])
    # The collections measure cosine distance; a score is the similarity, higher is better.
    return [(item, 1.0 - distance) for item, distance in zip(found["ids"][0], found["distances"][0], strict=True)]


class DenseRetriever(BaseRetriever):
    """Nearest chunks in one Chroma collection by cosine similarity (ids and scores; no text)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: Any
    embeddings: Embeddings
    k: int = Field(20, ge=1)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [
            Document(id=chunk_id, page_content="", metadata={"score": score})
            for chunk_id, score in nearest(self.collection, self.embeddings.embed_query(query), self.k)
        ]


class SentenceRetriever(BaseRetriever):
    """Chunks ranked by their single best-matching sentence (ids and scores; no text)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: Any
    embeddings: Embeddings
    k: int = Field(20, ge=1)
    sentences: int = Field(40, ge=1, description="How many nearest sentences to look at.")

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        best: dict[str, Document] = {}
        for sid, score in nearest(self.collection, self.embeddings.embed_query(query), self.sentences):
            chunk_id = chunk_of_sentence(sid)
            if chunk_id not in best:  # results come nearest first
                best[chunk_id] = Document(id=chunk_id, page_content="", metadata={"score": score, "sentence_id": sid})
        return list(best.values())[: self.k]


class LexicalRetriever(BaseRetriever):
    """Chunks by BM25 score over stemmed words."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: LexicalIndex
    k: int = Field(20, ge=1)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [
            Document(id=chunk_id, page_content=text, metadata={"score": score})
            for chunk_id, score, text in self.index.search(query, self.k)
        ]


class HybridRetriever(BaseRetriever):
    """Runs several retrievers on the same query and fuses their rankings into the served version's passages.

    Only passages ``chunks`` lists are returned (a build in progress may have written newer ones beside them),
    each with its text and every retriever's own score as ``<name>_score``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retrievers: dict[str, BaseRetriever]
    chunks: ChunkTable
    k: int = Field(5, ge=1)
    weights: dict[str, float] = Field(default_factory=dict)
    #: Retrievers whose scores are unbounded and get normalised before a linear fusion.
    normalize: frozenset[str] = frozenset({"lexical"})
    fusion: str = Field("linear", pattern="^(linear|rrf)$")

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        # The vector queries wait on the store (a server's HTTP round trip, or Rust code that frees the GIL):
        # run them side by side. The query is embedded once; the other retrievers wait for the cached vector.
        def run(name: str) -> list[Document]:
            return self.retrievers[name].invoke(query, config={"callbacks": run_manager.get_child(name)})

        *others, last = self.retrievers
        running = [_FAN_OUT.submit(run, name) for name in others]
        mine = run(last)
        results = dict(zip(self.retrievers, [*(future.result() for future in running), mine], strict=True))
        rankings = {name: [(d.id, d.metadata["score"]) for d in docs if d.id] for name, docs in results.items()}
        if self.fusion == "rrf":
            fused = reciprocal_rank_fusion(rankings, weights=self.weights)
        else:
            fused = linear_fusion(rankings, weights=self.weights, normalize=self.normalize)
        own: dict[str, dict[str, float]] = {}
        for name, docs in results.items():
            for doc in docs:
                if doc.id:
                    own.setdefault(doc.id, {})[f"{name}_score"] = doc.metadata["score"]
        best = [(chunk_id, score) for chunk_id, score in fused if chunk_id in self.chunks][: self.k]
        found = self.chunks.fetch(chunk_id for chunk_id, _ in best)
        return [
            Document(id=chunk_id, page_content=found[chunk_id].text, metadata={"score": score, **own[chunk_id]})
            for chunk_id, score in best
            if chunk_id in found
        ]
