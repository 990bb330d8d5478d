"""Fixtures of the index tests: a private corpus and index folder, and the real model counting what it embeds."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from bot.settings import Settings


class CountingEmbeddings(Embeddings):
    """The real model, counting how many passages it is asked to embed."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.embedded = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture
def counting(embeddings) -> CountingEmbeddings:
    return CountingEmbeddings(embeddings)


@pytest.fixture
def settings(corpus_copy: Path, tmp_path: Path) -> Settings:
    return Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index")


def edit(corpus: Path, old: str, new: str) -> None:
    article = corpus / "leg-press-knee-pain.md"
    text = article.read_text(encoding="utf-8")
    assert old in text
    article.write_text(text.replace(old, new), encoding="utf-8")
