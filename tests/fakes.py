"""Fakes at the seams, so unit tests of stages, the index and the server run in milliseconds.

Integration tests keep the real model, Chroma (a directory and a ``chroma run`` server) and the browser.
"""

from __future__ import annotations

# -- embeddings and the vector store (bot.index) ------------------------------------------------------
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

_WORD = re.compile(r"[a-z0-9]+")


class HashEmbeddings(Embeddings):
    """Deterministic bag-of-words vectors: each word adds ±1 at a place its hash picks; unit length.

    Texts sharing words are close, texts sharing none are orthogonal (up to collisions), and the same text
    always gets the same vector, in any process (``hashlib``, not ``hash``). A text with no words gets a
    fixed vector of its own.
    """

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.embedded = 0

    def _vector(self, text: str) -> list[float]:
        vector = np.zeros(self.dim, dtype=np.float64)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] & 1 else -1.0
        norm = np.linalg.norm(vector)
        if not norm:
            vector[self.dim - 1], norm = 1.0, 1.0
        return [float(x) for x in vector / norm]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


class InMemoryStore:
    """A ``VectorStore`` in a dict, with the semantics of ``ChromaStore`` (``tests/index/test_store.py`` checks).

    Vectors are kept as float32; a query ranks by cosine similarity, nearest first (ties by id), and scores
    ``1 - cosine distance`` as Chroma's cosine space does. It counts its queries and reads.
    """

    def __init__(self) -> None:
        self._vectors: dict[str, np.ndarray] = {}
        self._documents: dict[str, str] = {}
        self._metadatas: dict[str, dict[str, Any]] = {}
        self.queries = 0
        self.reads: list[list[str]] = []

    def query(self, vector: Sequence[float], k: int) -> list[tuple[str, float]]:
        self.queries += 1
        if not self._vectors:
            return []
        ids = list(self._vectors)
        matrix = np.stack([self._vectors[i] for i in ids])
        matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        query = np.asarray(vector, dtype=np.float32)
        distances = np.float32(1.0) - matrix @ (query / np.linalg.norm(query))
        nearest = sorted(zip(ids, distances.tolist(), strict=True), key=lambda pair: (pair[1], pair[0]))[:k]
        return [(item, 1.0 - distance) for item, distance in nearest]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        self.reads.append(list(ids))
        return {i: self._vectors[i].copy() for i in ids if i in self._vectors}

    def records(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.reads.append(list(ids))
        return {i: dict(self._metadatas[i]) for i in ids if i in self._metadatas}

    def held(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self._vectors}

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        for i, vector, document, metadata in zip(ids, vectors, documents, metadatas, strict=True):
            self._vectors[i] = np.asarray(vector, dtype=np.float32)
            self._documents[i] = document
            self._metadatas[i] = dict(metadata)

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self._vectors.pop(i, None)
            self._documents.pop(i, None)
            self._metadatas.pop(i, None)

    def delete_where(self, key: str, values: Sequence[str]) -> None:
        wanted = set(values)
        self.delete([i for i, metadata in self._metadatas.items() if metadata.get(key) in wanted])

    def count(self) -> int:
        return len(self._vectors)


# -- the engine, as the server sees it (bot.server) ---------------------------------------------------


# (filled in by the server work)
