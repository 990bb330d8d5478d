"""``usage`` for the OpenAI-compatible API: tokens counted with the embedding model's tokenizer.

The coach runs no language model, so there are no generated tokens to count; the embedding model's own
WordPiece tokenizer (``tokenizer.json`` in its folder, read with the ``tokenizers`` library) gives counts of
the same order as a chat model's. Special tokens are not counted. A model folder without a
``tokenizer.json`` gets words counted instead. Loaded once per process and model folder.

Counting is not free (a few hundred microseconds for an answer's length, as much as the rest of a cached
answer's handling), so counts are cached per text: answers to common questions recur, and every turn of a
conversation sends the earlier turns again.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache, partial
from pathlib import Path

from tokenizers import Tokenizer

from bot.cache import CountingLRU
from bot.models.embedding import EmbeddingModelError, resolve_model_path

log = logging.getLogger("bot.server.usage")

_WORD = re.compile(r"\w+|[^\w\s]")


class TokenCounter:
    """Counts the tokens of a text (``tokenizer`` ``None``: its words and punctuation marks)."""

    def __init__(self, tokenizer: Tokenizer | None, *, cache_size: int = 2048) -> None:
        self._tokenizer = tokenizer
        #: Counts by text, keyed by length and hash (not the text: a long history would fill memory).
        self._counts: CountingLRU[int] = CountingLRU(cache_size)

    @classmethod
    def for_model(cls, model: str) -> TokenCounter:
        """The counter of the configured embedding model (``BOT_EMBEDDING_MODEL``)."""
        try:
            folder = resolve_model_path(model)
        except EmbeddingModelError:  # loading the engine will say so; usage need not fail first
            return cls(None)
        return cls(_tokenizer(folder / "tokenizer.json"))

    def count(self, *texts: str) -> int:
        """The tokens of all ``texts``, each counted on its own."""
        return sum(self._counts.get_or_compute((len(text), hash(text)), partial(self._count, text)) for text in texts)

    def _count(self, text: str) -> int:
        if self._tokenizer is None:
            return len(_WORD.findall(text))
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


@lru_cache(maxsize=4)
def _tokenizer(path: Path) -> Tokenizer | None:
    if not path.is_file():
        log.warning("%s is missing: usage counts words instead of tokens.", path)
        return None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
