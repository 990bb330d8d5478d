"""Hybrid retrieval: several dense views (the vector stores) and BM25, fused into one ranking.

Every retriever is a LangChain ``BaseRetriever`` returning documents whose ``id`` is a chunk id and whose
``metadata["score"]`` is its own score (higher is better), so they can be swapped, combined and tested by
one contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, Field

from bot.lexical import LexicalIndex

Ranking = Sequence[tuple[str, float]]


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


class DenseRetriever(BaseRetriever):
    """Nearest chunks in one vector store by cosine similarity."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: VectorStore
    k: int = Field(20, ge=1)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        # Cosine distance → similarity ourselves: LangChain's relevance helper warns on (valid) negatives.
        return [
            Document(id=doc.id, page_content=doc.page_content, metadata={**doc.metadata, "score": 1.0 - distance})
            for doc, distance in self.store.similarity_search_with_score(query, k=self.k)
        ]


class SentenceRetriever(BaseRetriever):
    """Chunks ranked by their single best-matching sentence (sentence vectors carry a ``chunk_id``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: VectorStore
    k: int = Field(20, ge=1)
    sentences: int = Field(40, ge=1, description="How many nearest sentences to look at.")

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        best: dict[str, Document] = {}
        for doc, distance in self.store.similarity_search_with_score(query, k=self.sentences):
            chunk_id = doc.metadata["chunk_id"]
            if chunk_id not in best:  # results come nearest first
                best[chunk_id] = Document(
                    id=chunk_id,
                    page_content=doc.page_content,
                    metadata={"score": 1.0 - distance, "sentence_id": doc.id},
                )
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
    """Runs several retrievers on the same query and fuses their rankings.

    Each fused document's metadata keeps every retriever's own score as ``<name>_score``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retrievers: dict[str, BaseRetriever]
    k: int = Field(5, ge=1)
    weights: dict[str, float] = Field(default_factory=dict)
    #: Retrievers whose scores are unbounded and get normalised before a linear fusion.
    normalize: frozenset[str] = frozenset({"lexical"})
    fusion: str = Field("linear", pattern="^(linear|rrf)$")

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        results = {
            name: retriever.invoke(query, config={"callbacks": run_manager.get_child(name)})
            for name, retriever in self.retrievers.items()
        }
        rankings = {name: [(d.id, d.metadata["score"]) for d in docs if d.id] for name, docs in results.items()}
        if self.fusion == "rrf":
            fused = reciprocal_rank_fusion(rankings, weights=self.weights)
        else:
            fused = linear_fusion(rankings, weights=self.weights, normalize=self.normalize)
        contents: dict[str, str] = {}
        own: dict[str, dict[str, float]] = {}
        for name, docs in results.items():
            for doc in docs:
                if doc.id:
                    contents.setdefault(doc.id, doc.page_content)
                    own.setdefault(doc.id, {})[f"{name}_score"] = doc.metadata["score"]
        return [
            Document(id=chunk_id, page_content=contents[chunk_id], metadata={"score": score, **own[chunk_id]})
            for chunk_id, score in fused[: self.k]
        ]
