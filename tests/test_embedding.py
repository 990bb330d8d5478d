"""The embedding model: the lean torch-only path gives sentence-transformers' vectors, and loads alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.models.embedding import BertMeanEmbeddings, load_embeddings, resolve_model_path
from bot.settings import PACKAGED_EMBEDDING_MODEL, PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = resolve_model_path(PACKAGED_EMBEDDING_MODEL)


def texts() -> list[str]:
    from bot.content.chunking import chunk_document
    from bot.content.corpus import load_corpus

    chunks = [c for d in load_corpus(PROJECT_ROOT / "corpus") for c in chunk_document(d, 450)]
    return [
        *(c.plain_text for c in chunks[:20]),  # passages of different lengths: padded batches
        *(c.sentence_text(s) for c in chunks[:10] for s in c.sentences),
        "Where should my feet go?",
        "knee " * 400,  # longer than the model's 256 tokens: truncated the same way
        "two\nlines",
        "",
    ]


def test_the_lean_path_gives_the_sentence_transformers_vectors() -> None:
    from langchain_huggingface import HuggingFaceEmbeddings

    usable, max_length = BertMeanEmbeddings.usable(MODEL)
    assert usable and max_length == 256
    lean = BertMeanEmbeddings(MODEL, max_length=max_length)
    reference = HuggingFaceEmbeddings(model_name=str(MODEL), model_kwargs={"device": "cpu"},
                                      encode_kwargs={"normalize_embeddings": True, "batch_size": 32})  # fmt: skip
    ours, theirs = np.array(lean.embed_documents(texts())), np.array(reference.embed_documents(texts()))
    assert ours.shape == theirs.shape == (len(texts()), 384)
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(lean.embed_query("Do knee sleeves help?"), reference.embed_query("Do knee sleeves help?"),
                       atol=1e-5)  # fmt: skip


def test_a_model_the_lean_path_does_not_cover_goes_through_sentence_transformers(tmp_path: Path) -> None:
    folder = tmp_path / "cls-model"
    shutil.copytree(MODEL, folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text()) | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    pooling.write_text(json.dumps(config))
    assert BertMeanEmbeddings.usable(folder) == (False, 256)
    embeddings = load_embeddings(str(folder))
    assert type(embeddings.inner).__name__ == "HuggingFaceEmbeddings"
    assert len(embeddings.embed_query("knee")) == 384


def test_the_packaged_model_loads_without_sentence_transformers() -> None:
    heavy = "{'sentence_transformers', 'transformers', 'sklearn', 'scipy'}"
    code = ("import sys; from bot.models.embedding import load_embeddings; load_embeddings().embed_query('knee');"
            f"print(sorted({heavy} & set(sys.modules)))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=os.environ, capture_output=True,
                            text=True, timeout=120, check=True)  # fmt: skip
    assert result.stdout.strip() == "[]", result.stderr
