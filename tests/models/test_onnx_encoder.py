"""The ONNX encoder: sentence-transformers' vectors without torch, checked on load, torch as the fallback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.models.embedding import EmbeddingModelError, load_embeddings, resolve_model_path
from bot.models.onnx_encoder import (
    RECORD_FILE,
    OnnxEmbeddings,
    ensure_export,
    export_folder,
    mean_pooling_model,
    min_cosine,
)
from bot.settings import PACKAGED_EMBEDDING_MODEL, PROJECT_ROOT, Settings, default_model_cache_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = resolve_model_path(PACKAGED_EMBEDDING_MODEL)


def texts() -> list[str]:
    from bot.content.chunking import chunk_document
    from bot.content.corpus import load_corpus

    chunks = [c for d in load_corpus(PROJECT_ROOT / "corpus") for c in chunk_document(d, 450)]
    return [
        *(c.plain_text for c in chunks[:40]),  # passages of different lengths: padded batches, two of them
        *(c.sentence_text(s) for c in chunks[:10] for s in c.sentences),
        "Where should my feet go?",
        "knee " * 400,  # longer than the model's 256 tokens: truncated the same way
        "two\nlines",
        "",
    ]


@pytest.fixture(scope="module")
def folder() -> Path:
    return ensure_export(MODEL, default_model_cache_dir())


def test_onnx_gives_the_sentence_transformers_vectors(embeddings) -> None:
    from langchain_huggingface import HuggingFaceEmbeddings

    reference = HuggingFaceEmbeddings(model_name=str(MODEL), model_kwargs={"device": "cpu"},
                                      encode_kwargs={"normalize_embeddings": True, "batch_size": 32})  # fmt: skip
    ours, theirs = np.array(embeddings.embed_documents(texts())), np.array(reference.embed_documents(texts()))
    assert ours.shape == theirs.shape == (len(texts()), 384)
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(embeddings.embed_query("Do knee sleeves help?"), reference.embed_query("Do knee sleeves help?"),
                       atol=1e-5)  # fmt: skip


def test_the_export_records_its_check_against_torch(folder: Path) -> None:
    record = json.loads((folder / RECORD_FILE).read_text())
    assert record["min_cosine"] >= 0.9999 and record["checked_texts"] >= 200  # every eval question, and more
    assert len(record["reference_texts"]) == len(record["reference_vectors"]) == 8


def test_the_packaged_model_serves_on_onnx_without_torch() -> None:
    heavy = "{'torch', 'sentence_transformers', 'transformers', 'sklearn', 'scipy'}"
    code = ("import sys; from bot.models.embedding import load_embeddings; e = load_embeddings();"
            f"e.embed_query('knee'); print(type(e.inner).__name__, sorted({heavy} & set(sys.modules)))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=os.environ, capture_output=True,
                            text=True, timeout=180, check=True)  # fmt: skip
    assert result.stdout.strip() == "OnnxEmbeddings []", result.stderr


def test_an_export_that_no_longer_matches_torch_refuses_to_start(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    copy = export_folder(cache, MODEL)
    shutil.copytree(folder, copy)
    record = json.loads((copy / RECORD_FILE).read_text())
    record["reference_vectors"] = (-np.array(record["reference_vectors"])).tolist()  # as a damaged file would give
    (copy / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(EmbeddingModelError, match=r"does not reproduce the torch model's vectors.*BOT_ENCODER=torch"):
        load_embeddings(cache_dir=cache)


def test_a_damaged_model_file_refuses_to_start(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    copy = export_folder(cache, MODEL)
    shutil.copytree(folder, copy)
    (copy / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(EmbeddingModelError, match=r"cannot be loaded.*BOT_ENCODER=torch"):
        load_embeddings(cache_dir=cache)


def test_batches_and_single_texts_give_the_same_vectors(folder: Path) -> None:
    encoder = OnnxEmbeddings(folder, threads=1, batch_size=8)
    batch = texts()[:30]
    together = encoder.embed_array(batch)
    alone = np.stack([encoder.embed_array([t])[0] for t in batch])
    assert np.abs(together - alone).max() < 1e-5


def test_a_model_the_export_does_not_cover_is_embedded_with_torch(tmp_path: Path) -> None:
    folder = tmp_path / "cls-model"
    shutil.copytree(MODEL, folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text()) | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    pooling.write_text(json.dumps(config))
    assert mean_pooling_model(folder) == (False, 256)
    embeddings = load_embeddings(str(folder), cache_dir=tmp_path / "cache")
    assert type(embeddings.inner).__name__ == "HuggingFaceEmbeddings"
    assert len(embeddings.embed_query("knee")) == 384
    assert not (tmp_path / "cache").exists()  # nothing was exported


def test_bot_encoder_torch_is_the_fallback(embeddings) -> None:
    torch_path = load_embeddings(encoder="torch")
    assert type(torch_path.inner).__name__ == "HuggingFaceEmbeddings"
    assert np.allclose(torch_path.embed_query("knee pain"), embeddings.embed_query("knee pain"), atol=1e-5)


def test_int8_is_another_model_for_the_index() -> None:
    assert Settings().embedding_id == PACKAGED_EMBEDDING_MODEL
    assert Settings(encoder_int8=True).embedding_id == f"{PACKAGED_EMBEDDING_MODEL} (int8)"
    assert Settings(encoder_int8=True, encoder="torch").embedding_id == PACKAGED_EMBEDDING_MODEL
    assert export_folder(Path("/c"), MODEL, int8=True) != export_folder(Path("/c"), MODEL)


def test_int8_weights_are_opt_in_and_checked_to_their_own_bar(tmp_path: Path) -> None:
    int8 = load_embeddings(int8=True, cache_dir=tmp_path / "cache", threads=1)
    record = json.loads((export_folder(tmp_path / "cache", MODEL, int8=True) / RECORD_FILE).read_text())
    assert record["int8"] and min_cosine(True) <= record["min_cosine"] < 0.9999  # faster, but not the same vectors
    fp32 = load_embeddings(threads=1)
    assert float(np.dot(int8.embed_query("knee pain"), fp32.embed_query("knee pain"))) > 0.95


def test_questions_embedded_together_get_their_own_vectors(folder: Path) -> None:
    encoder = OnnxEmbeddings(folder, threads=1, batch_size=8)
    questions = [*texts()[-12:], "Where should my feet go?", "knee"]  # short and long: several groups
    together = np.array(encoder.embed_queries(questions))
    alone = np.stack([encoder.embed_array([q])[0] for q in questions])
    assert together.shape == alone.shape
    assert np.abs(together - alone).max() < 1e-5
