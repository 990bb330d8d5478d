"""Fakes at the seams, so unit tests of stages, the index and the server run in milliseconds.

Integration tests keep the real model, Chroma (a directory and a ``chroma run`` server) and the browser.
"""

from __future__ import annotations

# -- embeddings and the vector store (bot.index) ------------------------------------------------------
import hashlib
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from bot.cache import CountingLRU
from bot.contract import Answer, Citation, Status
from bot.policy import DISCLAIMER, INVALID
from bot.version import __version__

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


@dataclass
class FakeManifest:
    """The served index version, as ``/api/health`` reports it."""

    version: int = 1
    chunk_count: int = 3


@dataclass
class FakeIndex:
    manifest: FakeManifest = field(default_factory=FakeManifest)


def canned_answer(question: str) -> Answer:
    """An ``answered`` reply citing one passage and ending with the disclaimer, as the engine's do."""
    citation = Citation(n=1, chunk_id="c1", doc_id="d1", title="Leg press basics", section="Feet",
                        text="Place your feet shoulder-width apart.", quote="Place your feet shoulder-width apart.",
                        start=0, end=37)  # fmt: skip
    text = f"Place your feet shoulder-width apart [1].\n\n---\n\n{DISCLAIMER}"
    return Answer(question=question, status=Status.answered, answer=text, disclaimer=DISCLAIMER,
                  citations=[citation], timings_ms={"screen": 0.1, "total": 1.0})  # fmt: skip


class FakeEngine:
    """Exactly what the server uses of ``Engine`` (``bot.server.services.AnswerEngine``), answering in microseconds.

    Every question is answered with ``canned_answer``; ``stream`` yields its text in two pieces, then the
    answer. Set ``fail`` to have ``ask`` and ``stream`` raise it (``httpx.ConnectError`` is a lost Chroma
    server when the settings name one). Clear ``hold`` to make them wait, once started (``stream`` after
    its first piece), until it is set again: a busy answer slot.
    """

    composer = "extractive"

    def __init__(self) -> None:
        self.index = FakeIndex()
        self.caches: dict[str, CountingLRU[Any]] = {"retrieval": CountingLRU(8)}
        self.fail: BaseException | None = None
        self.hold = threading.Event()
        self.hold.set()
        #: The questions asked, in the order they started, with the history each came with.
        self.asked: list[tuple[str, list[Any]]] = []
        self.refreshes = 0
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return f"{__version__}+index.{self.index.manifest.version}"

    def refresh(self) -> bool:
        self.refreshes += 1
        return False

    def questions(self) -> list[str]:
        """The questions started so far."""
        with self._lock:
            return [question for question, _history in self.asked]

    def _start(self, question: str, history: Iterable[Any] | None) -> None:
        with self._lock:
            self.asked.append((question, list(history or [])))
        if self.fail is not None:
            raise self.fail

    def _wait(self) -> None:
        assert self.hold.wait(30), "the test never let the fake engine answer"

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        self._start(question, history)
        self._wait()
        return canned_answer(question)

    def reject(self, question: str, reason: str) -> Answer:
        """The engine's ``invalid`` reply: the policy's message for ``reason``, then the disclaimer."""
        text = f"{INVALID[reason]}\n\n---\n\n{DISCLAIMER}"
        return Answer(question=question, status=Status.invalid, answer=text, disclaimer=DISCLAIMER, reason=reason)

    def stream(self, question: str, history: Iterable[Any] | None = None) -> Iterator[str | Answer]:
        self._start(question, history)
        answer = canned_answer(question)
        cut = answer.answer.index("\n\n---")
        yield answer.answer[:cut]
        self._wait()
        yield answer.answer[cut:]
        yield answer
