"""Passages as vector-store records, the served version's passage table, and the ids of sentence vectors.

A passage's record (everything needed to cite it) is stored once, as the metadata of its vector; a sentence's
vector carries only the id of its passage.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from bot.cache import CountingLRU
from bot.content.documents import Chunk, Sentence
from bot.index.store import VectorStore

#: The metadata key of a sentence vector that names its passage (a build deletes sentences by it).
SENTENCE_CHUNK_KEY = "chunk_id"


def encode_passage(chunk: Chunk) -> dict[str, Any]:
    """A chunk as vector-store metadata: everything needed to cite it, stored once, with its vector."""
    return {
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "section": json.dumps(chunk.section, ensure_ascii=False),
        "text": chunk.text,
        "start": chunk.start,
        "end": chunk.end,
        "context": chunk.context,
        "sentences": json.dumps([list(s) for s in chunk.sentences]),
    }


def decode_passage(chunk_id: str, record: Mapping[str, Any]) -> Chunk:
    """The chunk a record made by :func:`encode_passage` describes."""
    return Chunk(
        chunk_id=chunk_id,
        doc_id=record["doc_id"],
        title=record["title"],
        section=tuple(json.loads(record["section"])),
        text=record["text"],
        start=record["start"],
        end=record["end"],
        context=record["context"],
        sentences=tuple(Sentence(*values) for values in json.loads(record["sentences"])),
    )


def sentence_record(chunk_id: str) -> dict[str, Any]:
    """A sentence vector's metadata: the passage it belongs to."""
    return {SENTENCE_CHUNK_KEY: chunk_id}


def sentence_id(chunk_id: str, position: int) -> str:
    """Vector-store id of the ``position``-th sentence of the chunk ``chunk_id``."""
    return f"{chunk_id}/{position}"


def chunk_of_sentence(sid: str) -> str:
    """The chunk id a sentence's vector-store id belongs to (the inverse of :func:`sentence_id`)."""
    return sid.rpartition("/")[0]


def quotable_sentences(chunk: Chunk) -> Iterable[tuple[int, Sentence]]:
    """The sentences of ``chunk`` an answer may quote, with their positions (see :func:`sentence_id`)."""
    for position, sentence in enumerate(chunk.sentences):
        if sentence.quotable:
            yield position, sentence


class PassageTable(Mapping[str, Chunk]):
    """The served version's passages: ids from the manifest, records read from the vector store when needed."""

    def __init__(self, ids: list[str], store: VectorStore, cache: CountingLRU[Chunk] | None = None) -> None:
        self._ids = ids
        self._live = frozenset(ids)
        self._store = store
        #: Passage records by id; content-addressed, so one cache serves every version.
        self.cache: CountingLRU[Chunk] = cache or CountingLRU(4096)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._live

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, chunk_id: str) -> Chunk:
        if chunk_id not in self._live:
            raise KeyError(chunk_id)
        return self.fetch([chunk_id])[chunk_id]

    def fetch(self, ids: Iterable[str]) -> dict[str, Chunk]:
        """The records of ``ids`` that belong to this version, in one store round trip for the uncached ones."""
        return self.cache.get_or_fetch_many((i for i in ids if i in self._live), self._read)

    def _read(self, ids: list[str]) -> dict[str, Chunk]:
        return {chunk_id: decode_passage(chunk_id, record) for chunk_id, record in self._store.records(ids).items()}

    def values(self) -> list[Chunk]:  # type: ignore[override]
        """Every passage (reads the whole version: for tests and tools, not for answering)."""
        found = self.fetch(self._ids)
        return [found[i] for i in self._ids if i in found]


@runtime_checkable
class _Fetching(Protocol):
    def fetch(self, ids: Iterable[str]) -> dict[str, Chunk]: ...


def fetch_passages(passages: Mapping[str, Chunk], ids: Iterable[str]) -> dict[str, Chunk]:
    """The passages of ``ids`` that ``passages`` lists.

    With the mapping's own ``fetch`` when it has one (a :class:`PassageTable` reads the store once for all the
    uncached ones), else by plain lookups.
    """
    if isinstance(passages, _Fetching):
        return passages.fetch(ids)
    return {i: passages[i] for i in ids if i in passages}
