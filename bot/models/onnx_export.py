"""Export the installed sentence-transformers model to ONNX, check it against torch, and cache it.

Run as ``python -m bot.models.onnx_export MODEL_FOLDER CACHE_DIR [--int8]`` (``make install`` does, and
the encoder does on first use): this is the one module that imports torch for the ONNX encoder, in a
process of its own. The graph takes ``input_ids`` and ``attention_mask`` and returns the mean-pooled,
L2-normalised sentence vectors. The export is written to a temporary folder, checked against
sentence-transformers' vectors of the eval questions (and a few edge cases) — every cosine ≥ 0.9999,
or 0.9 for int8 — and only then renamed into place with its record; otherwise nothing is installed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bot.models.onnx_encoder import (
    EXPORT_RECIPE,
    MODEL_FILE,
    RECORD_FILE,
    OnnxEmbeddings,
    export_folder,
    mean_pooling_model,
    min_cosine,
)
from bot.settings import PROJECT_ROOT

#: Reference vectors kept in the record: each start checks them (a few ms), the export checks every text.
_REFERENCES_KEPT = 8
_EDGE_CASES = ["Where should my feet go?", "knee " * 400, "two\nlines", "", "Ça fait mal au genou ?"]


def check_texts() -> list[str]:
    """What the export is checked on: every eval question, the edge cases, a few passages."""
    import yaml

    texts = list(_EDGE_CASES)
    for path in sorted((PROJECT_ROOT / "eval" / "sets").glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")).get("cases", []):
            texts += [case["question"]] if case.get("question") else []
            texts += [turn for turn in case.get("turns", []) if isinstance(turn, str)]
    corpus = PROJECT_ROOT / "corpus"
    texts += [path.read_text(encoding="utf-8")[:1200] for path in sorted(corpus.glob("*.md"))[:10]]
    return list(dict.fromkeys(texts))


def _export_graph(model_path: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    # Eager attention: the SDPA path drops an all-ones mask in Python, which tracing would freeze into the graph.
    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            # Keyword arguments: positional ones land on other parameters in current transformers.
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=torch.zeros_like(input_ids)).last_hidden_state  # fmt: skip
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / torch.clamp(weights.sum(1), min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    ids = torch.ones(2, 8, dtype=torch.long)
    mask = ids.clone()
    mask[1, 5:] = 0  # a padded row, so nothing about the mask is traced as a constant
    with torch.inference_mode():
        torch.onnx.export(
            MeanPooled(), (), str(target / MODEL_FILE), kwargs={"input_ids": ids, "attention_mask": mask},
            input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "sentence_embedding": {0: "batch"}},
            dynamo=False, opset_version=17,
        )  # fmt: skip


def _quantize(target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = target / "model-fp32.onnx"
    (target / MODEL_FILE).rename(fp32)
    # Per output channel, 7-bit range: the lowest cosine to torch on the check texts
    # is 0.943 ("thanks!"; 0.831 per tensor).
    quantize_dynamic(str(fp32), str(target / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True)  # fmt: skip
    fp32.unlink()


def _reference_vectors(model_path: Path, texts: list[str]) -> np.ndarray:
    from langchain_huggingface import HuggingFaceEmbeddings

    reference = HuggingFaceEmbeddings(model_name=str(model_path), model_kwargs={"device": "cpu"},
                                      encode_kwargs={"normalize_embeddings": True, "batch_size": 32})  # fmt: skip
    return np.asarray(reference.embed_documents(texts), dtype=np.float32)


def export(model_path: Path, cache_dir: Path, *, int8: bool = False) -> Path:
    """Export, check and install the ONNX encoder of ``model_path``; its folder. Raises ``SystemExit`` on a mismatch."""
    usable, max_length = mean_pooling_model(model_path)
    if not usable:
        raise SystemExit(f"{model_path} is not a mean-pooling sentence-transformers model the export reproduces")
    final = export_folder(cache_dir, model_path, int8=int8)
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=cache_dir))
    try:
        _export_graph(model_path, work)
        if int8:
            _quantize(work)
        shutil.copy2(model_path / "tokenizer.json", work / "tokenizer.json")
        config = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
        texts = check_texts()
        expected = _reference_vectors(model_path, texts)
        # Questions, short like those served, and one edge case: checking them costs each start a few ms.
        kept = [i for i, text in enumerate(texts) if len(text) < 200][:_REFERENCES_KEPT]
        record: dict[str, Any] = {"model": str(model_path.resolve()), "recipe": EXPORT_RECIPE, "int8": int8,
                                  "model_file": MODEL_FILE, "max_length": max_length,
                                  "pad_id": int(config.get("pad_token_id", 0)),
                                  "reference_texts": [texts[i] for i in kept],
                                  "reference_vectors": expected[kept].tolist()}  # fmt: skip
        (work / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")
        ours = OnnxEmbeddings(work, threads=0).embed_array(texts)
        cosines = np.sum(ours * expected, axis=1)
        worst = int(np.argmin(cosines))
        record |= {"checked_texts": len(texts), "min_cosine": float(cosines[worst]),
                   "max_abs_difference": float(np.abs(ours - expected).max())}  # fmt: skip
        if cosines[worst] < min_cosine(int8):
            raise SystemExit(f"the ONNX export disagrees with torch: cosine {cosines[worst]:.6f} < {min_cosine(int8)} "
                             f"for {texts[worst][:60]!r}")  # fmt: skip
        (work / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"ONNX encoder in {final}: {record['checked_texts']} texts, min cosine to torch {record['min_cosine']:.7f}")
    return final


def main(argv: list[str] | None = None) -> None:
    """Command line: export (and check) one model into the cache."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("cache_dir", nargs="?", type=Path, help="model cache (default: BOT_MODEL_CACHE_DIR)")
    parser.add_argument("--int8", action="store_true", help="int8 dynamic quantization (opt-in: other vectors)")
    args = parser.parse_args(argv)
    from bot.models.embedding import resolve_model_path
    from bot.settings import get_settings

    settings = get_settings()
    export(resolve_model_path(args.model or settings.embedding_model), args.cache_dir or settings.model_cache_dir,
           int8=args.int8 or settings.encoder_int8)  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
