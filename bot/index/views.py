"""The views of the index: what each retriever searches and what each of their scores is called."""

from __future__ import annotations

from enum import Enum


class View(str, Enum):
    """One searchable view of the passages; the value names its Chroma collection and its score."""

    #: Each passage's vector.
    text = "text"
    #: Each quotable sentence's vector (a passage ranks by its best sentence).
    sentences = "sentences"
    #: BM25 over each passage under its headings.
    lexical = "lexical"

    @property
    def score_key(self) -> str:
        """The metadata key under which the hybrid retriever reports this view's own score."""
        return f"{self.value}_score"


#: The views held in the vector store, one collection each.
VECTOR_VIEWS = (View.text, View.sentences)
