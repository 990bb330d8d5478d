"""BM25 over the chunks (``bm25s``), with English stemming and stop words, persisted beside the vectors."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import bm25s
from bm25s.tokenization import Tokenizer

_IDS_FILE = "chunk_ids.json"

logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets itself to DEBUG on import


@lru_cache(maxsize=1)
def _stem():
    import Stemmer

    return Stemmer.Stemmer("english").stemWord


def _new_tokenizer() -> Tokenizer:
    return Tokenizer(stopwords="en", stemmer=_stem())


def content_words(text: str) -> set[str]:
    """Stemmed content words of ``text`` (stop words removed), as BM25 sees them."""
    tokens = _new_tokenizer().tokenize([text], return_as="string", show_progress=False)
    return set(tokens[0])


class LexicalIndex:
    """A BM25 index keyed by chunk id."""

    def __init__(self, retriever: bm25s.BM25, tokenizer: Tokenizer, chunk_ids: list[str]) -> None:
        self._retriever = retriever
        self._tokenizer = tokenizer
        self.chunk_ids = chunk_ids
        # bm25s maps every unknown word to the empty token; it must not count as a match.
        self._empty_token = tokenizer.get_vocab_dict().get("")

    @classmethod
    def build(cls, chunk_ids: list[str], texts: list[str]) -> LexicalIndex:
        """Index ``texts`` (one per chunk id)."""
        tokenizer = _new_tokenizer()
        tokens = tokenizer.tokenize(texts, return_as="tuple", show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(retriever, tokenizer, list(chunk_ids))

    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` (created if needed)."""
        folder.mkdir(parents=True, exist_ok=True)
        self._retriever.save(str(folder), show_progress=False)
        self._tokenizer.save_vocab(str(folder))
        (folder / _IDS_FILE).write_text(json.dumps(self.chunk_ids), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """Read an index written by :meth:`save`."""
        retriever = bm25s.BM25.load(str(folder), show_progress=False)
        tokenizer = _new_tokenizer()
        tokenizer.load_vocab(str(folder))
        chunk_ids = json.loads((folder / _IDS_FILE).read_text(encoding="utf-8"))
        return cls(retriever, tokenizer, chunk_ids)

    def idf(self, words: Iterable[str]) -> dict[str, float]:
        """BM25's inverse document frequency of each stemmed word that occurs in the index."""
        vocabulary = self._retriever.vocab_dict
        offsets = self._retriever.scores["indptr"]
        count = len(self.chunk_ids)
        weights = {}
        for word in words:
            token = vocabulary.get(word)
            if token:  # 0 is the empty token
                frequency = int(offsets[token + 1] - offsets[token])
                weights[word] = math.log((count - frequency + 0.5) / (frequency + 0.5) + 1.0)
        return weights

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """The best chunk ids for ``query`` (at most ``k``) with their BM25 scores, best first."""
        ids = self._tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)
        known = [token for token in ids[0] if token != self._empty_token]
        if not known or not self.chunk_ids:
            return []
        k = min(k, len(self.chunk_ids))
        documents, scores = self._retriever.retrieve([known], k=k, show_progress=False, n_threads=1)
        return [
            (self.chunk_ids[int(doc)], float(score))
            for doc, score in zip(documents[0], scores[0], strict=True)
            if score > 0
        ]
