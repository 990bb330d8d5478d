"""BM25 over the passages with tantivy: persisted on disk and updated in place, never rebuilt at start.

Passages and questions are analysed the same way (``bot.language.words``).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable
from pathlib import Path

import tantivy

from bot.language.words import ANALYZER_NAME, analyze, new_analyzer

_WRITER_HEAP = 64_000_000
#: Stemmed words whose document frequency is remembered per searcher (the composer asks about a question's
#: words and their one-letter variants: some 150 lookups per answer, mostly the same words).
_FREQUENCIES_KEPT = 65_536


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("chunk_id", stored=True, tokenizer_name="raw")
    builder.add_text_field("text", stored=True, tokenizer_name=ANALYZER_NAME, index_option="freq")
    return builder.build()


class LexicalIndex:
    """A tantivy BM25 index of passages keyed by chunk id, in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._schema = _schema()
        self._index = tantivy.Index(self._schema, path=str(folder), reuse=True)
        self._index.register_tokenizer(ANALYZER_NAME, new_analyzer())
        self._searcher = self._index.searcher()
        self._frequencies: tuple[tantivy.Searcher, dict[str, int]] = (self._searcher, {})

    @classmethod
    def copy(cls, source: Path, target: Path) -> LexicalIndex:
        """A new index in ``target`` holding what ``source`` holds (cheap: segment files are copied)."""
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        return cls(target)

    def update(self, remove: Iterable[str], add: Iterable[tuple[str, str]]) -> None:
        """Remove passages by id and add ``(chunk_id, text)`` pairs, in one commit."""
        writer = self._index.writer(_WRITER_HEAP, 1)
        for chunk_id in remove:
            writer.delete_documents_by_term("chunk_id", chunk_id)
        for chunk_id, text in add:
            writer.delete_documents_by_term("chunk_id", chunk_id)  # idempotent when a killed build is redone
            writer.add_document(tantivy.Document(chunk_id=chunk_id, text=text))
        writer.commit()
        writer.wait_merging_threads()
        self._index.reload()
        self._searcher = self._index.searcher()
        self._frequencies = (self._searcher, {})

    def __len__(self) -> int:
        return int(self._searcher.num_docs)

    def idf(self, words: Iterable[str]) -> dict[str, float]:
        """BM25's inverse document frequency of each stemmed word that occurs in the index."""
        searcher, known = self._frequencies  # one searcher's counts, replaced with it by ``update``
        count = int(searcher.num_docs)
        weights = {}
        for word in words:
            frequency = known.get(word)
            if frequency is None:
                frequency = searcher.doc_freq("text", word)
                if len(known) >= _FREQUENCIES_KEPT:
                    known.clear()
                known[word] = frequency
            if frequency:
                weights[word] = math.log((count - frequency + 0.5) / (frequency + 0.5) + 1.0)
        return weights

    def search(self, query: str, k: int) -> list[tuple[str, float, str]]:
        """The best passages for ``query`` (at most ``k``) as ``(chunk_id, BM25 score, text)``, best first.

        The question is analysed into terms here, never parsed as query syntax, so any text is safe.
        """
        terms = sorted(set(analyze(query)))
        if not terms or k < 1:
            return []
        clauses = [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "text", term)) for term in terms]
        searcher = self._searcher
        hits = searcher.search(tantivy.Query.boolean_query(clauses), k).hits
        results = []
        for score, address in hits:
            document = searcher.doc(address)
            results.append((document["chunk_id"][0], float(score), document["text"][0]))
        return results
