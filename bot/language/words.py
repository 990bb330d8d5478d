"""Words as search sees them: lower-cased, English stop words removed, stemmed (tantivy's analyzer).

The same analysis serves BM25 (passages and questions alike) and every word-overlap score (composing,
the grounding guard, the eval's groundedness), so "sleeves" matches "sleeve" and "locking" matches "lock".
"""

from __future__ import annotations

from functools import lru_cache

import tantivy

#: The analyzer's name in a tantivy index (the lexical index registers it under this name).
ANALYZER_NAME = "en_knee"


def new_analyzer() -> tantivy.TextAnalyzer:
    """A fresh analyzer (a tantivy index needs its own instance)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


@lru_cache(maxsize=1)
def _analyzer() -> tantivy.TextAnalyzer:
    return new_analyzer()


def analyze(text: str) -> list[str]:
    """The stemmed content words of ``text``, as the lexical index sees them."""
    return list(_analysed(text))


@lru_cache(maxsize=16384)  # the same words and sentences are analysed for answer after answer
def _analysed(text: str) -> tuple[str, ...]:
    return tuple(_analyzer().analyze(text))


def content_words(text: str) -> set[str]:
    """The distinct stemmed content words of ``text`` (for overlap scores)."""
    return set(analyze(text))
