"""Retrieval: the fused passages for the question, the vectors of their sentences, and the question's vector.

A search is remembered per index version: the vector-store queries are most of an answer's cost, and a
question asked again (the page's examples, the common ones) reuses the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from langchain_core.embeddings import Embeddings

from bot.cache import CountingLRU
from bot.content.synonyms import Synonyms
from bot.index import VECTOR_VIEWS, View, quotable_sentences, sentence_id
from bot.stages.state import AnswerState, Query, RankedPassage, Search, SentenceKey, Snapshot


class Retrieve:
    """Searches the request's index snapshot for the question and embeds the question for composing."""

    name = "retrieve"

    def __init__(self, embeddings: Embeddings, synonyms: Synonyms, *, depth: int, sentence_cache_size: int = 8192):
        self.embeddings = embeddings
        self.synonyms = synonyms
        #: How many of the best passages the composer may quote (their sentences' vectors are fetched).
        self.depth = depth
        # Content-addressed (chunk id, sentence position): never stale, so shared by every index version.
        self.sentence_vectors: CountingLRU[np.ndarray] = CountingLRU(sentence_cache_size)

    def applies(self, state: AnswerState) -> bool:
        """When there is something to search for (not for refused input, nor for instructions alone)."""
        return state.verdict is None and state.query is not None and bool(state.query.search_text)

    def run(self, state: AnswerState) -> AnswerState:
        """Find the passages for the query's search text, and the question's vector."""
        assert state.query is not None and state.snapshot is not None
        snapshot, text = state.snapshot, state.query.search_text
        # Embedded first, in this thread (a follow-up's two texts in one call): the searches find it cached.
        state.query_vector, state.own_vector = self.query_vectors(state.query)
        passages, state.sentence_vectors = snapshot.searches.get_or_compute(text, partial(self.search, snapshot, text))
        state.passages = list(passages)
        return state

    def search(self, snapshot: Snapshot, text: str) -> Search:
        """The fused passages for a search text, and the vectors of the quotable sentences the composer may use."""
        found = snapshot.retriever.search(text)
        chunks = snapshot.index.passages.fetch(chunk_id for chunk_id, _, _ in found)
        passages = [
            RankedPassage(
                chunks[chunk_id],
                score,
                max(own.get(view.score_key, -1.0) for view in VECTOR_VIEWS),
                own.get("lexical_score"),
            )
            for chunk_id, score, own in found
            if chunk_id in chunks
        ]
        return passages, self._vectors_of_sentences(snapshot, passages[: self.depth])

    def _vectors_of_sentences(self, snapshot: Snapshot, passages: list[RankedPassage]) -> dict[SentenceKey, np.ndarray]:
        def read(missing: list[SentenceKey]) -> dict[SentenceKey, np.ndarray]:
            keys = {sentence_id(*key): key for key in missing}
            found = snapshot.index.stores[View.sentences].vectors(list(keys))
            return {keys[sid]: vector for sid, vector in found.items()}

        wanted = [(p.chunk.chunk_id, position) for p in passages for position, _ in quotable_sentences(p.chunk)]
        return self.sentence_vectors.get_or_fetch_many(wanted, read)

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The vectors of ``texts`` (questions), from one call of the model for those not cached."""
        embed_many = getattr(self.embeddings, "embed_queries", None)
        vectors = embed_many(list(texts)) if embed_many else [self.embeddings.embed_query(t) for t in texts]
        return [np.asarray(vector, dtype=np.float32) for vector in vectors]

    def query_vectors(self, query: Query) -> tuple[np.ndarray, np.ndarray]:
        """The question's vector, and its own words' vector (the same unless it follows up on another turn).

        A follow-up's vector leans on its own words more than on the turn it continues.
        """
        if not query.is_follow_up:
            vector = self.embed([query.search_text])[0]
            return vector, vector
        resolved, own = self.embed([query.search_text, self.synonyms.expand(query.asked)])
        combined = resolved + own
        combined /= np.linalg.norm(combined) or 1.0
        return combined, own
