"""Warm ``ask`` latency and retrieval hit rates, against the LangChain RAG-tutorial recipe in the same run.

The baseline is the tutorial's retrieval: RecursiveCharacterTextSplitter(1000, 200) + all-MiniLM-L6-v2 +
Chroma similarity search, k=4, on the same corpus. Both sides embed every question afresh (our query cache
and search caches are cleared before each question). Interleaved with them, the bare embedding of the same
question — by the engine's encoder (ONNX Runtime by default) and by torch (sentence-transformers, one
thread) — so ``ask / bare embed`` says how much of an answer is not the embedding.
Run: ``python -m bench.ask_latency [--rounds N]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import answerable_cases, hits, summary, timed, write_result


def tutorial_retriever(corpus_dir: Path, model: str):
    """The tutorial recipe, built in a throwaway in-memory Chroma."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from bot.content.corpus import load_corpus
    from bot.models.embedding import resolve_model_path

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    texts = [chunk for document in load_corpus(corpus_dir) for chunk in splitter.split_text(document.text)]
    embeddings = HuggingFaceEmbeddings(model_name=str(resolve_model_path(model)), model_kwargs={"device": "cpu"})
    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
    store = Chroma.from_texts(texts, embeddings, client=client, collection_name="tutorial")
    return lambda question: [doc.page_content for doc in store.similarity_search(question, k=4)]


def bare_encoder(embeddings):
    """The model under the engine's cache and batcher: what one question's embedding costs alone."""
    while hasattr(embeddings, "inner"):
        embeddings = embeddings.inner
    return embeddings


def torch_embeddings(settings):
    """The same model on torch (sentence-transformers), one thread as the server's default."""
    import torch
    from langchain_huggingface import HuggingFaceEmbeddings

    from bot.models.embedding import resolve_model_path

    torch.set_num_threads(max(1, settings.torch_threads))
    path = resolve_model_path(settings.embedding_model)
    return HuggingFaceEmbeddings(model_name=str(path), model_kwargs={"device": "cpu"},
                                 encode_kwargs={"normalize_embeddings": True})  # fmt: skip


def main() -> None:
    """Measure both, print a comparison and save it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the question set")
    parser.add_argument("--sets", nargs="+", default=["core"], help="eval sets to take questions from")
    args = parser.parse_args()

    from bot.engine.engine import Engine
    from bot.settings import get_settings

    settings = get_settings()
    with tempfile.TemporaryDirectory() as scratch:
        settings = settings.model_copy(update={"index_dir": Path(scratch) / "index"})
        engine = Engine.load(settings)
        baseline = tutorial_retriever(settings.corpus_dir, settings.embedding_model)
        cases = answerable_cases(*args.sets)
        questions = [c["question"] for c in cases]

        encoder = bare_encoder(engine.embeddings)
        torch_encoder = torch_embeddings(settings)
        for question in questions[:10]:  # warm every path up
            engine.ask(question)
            baseline(question)
            encoder.embed_query(question)
            torch_encoder.embed_query(question)

        ours_ms: list[float] = []
        theirs_ms: list[float] = []
        ours_texts: list[list[str]] = []
        theirs_texts: list[list[str]] = []
        bare_ms: list[float] = []
        torch_ms: list[float] = []
        for round_ in range(args.rounds):
            for question in questions:
                engine.cache_clear()
                answer, elapsed = timed(lambda q=question: engine.ask(q))
                ours_ms.append(elapsed)
                bare_ms.append(timed(lambda q=question: encoder.embed_query(q))[1])
                torch_ms.append(timed(lambda q=question: torch_encoder.embed_query(q))[1])
                texts, elapsed = timed(lambda q=question: baseline(q))
                theirs_ms.append(elapsed)
                if round_ == 0:
                    ours_texts.append([p.text for p in answer.passages])
                    theirs_texts.append(texts)

    ours, theirs, bare, torch_bare = summary(ours_ms), summary(theirs_ms), summary(bare_ms), summary(torch_ms)
    result = {
        "encoder": type(encoder).__name__,
        "bare_embed": bare,
        "bare_embed_torch": torch_bare,
        "ask_over_bare_embed_p50": round(ours["p50_ms"] / bare["p50_ms"], 2),
        "bare_torch_over_bare_p50": round(torch_bare["p50_ms"] / bare["p50_ms"], 2),
        "questions": len(questions),
        "rounds": args.rounds,
        "sets": args.sets,
        "ours": {**ours, "hit@1": hits(ours_texts, cases, 1), "hit@3": hits(ours_texts, cases, 3)},
        "tutorial": {**theirs, "hit@1": hits(theirs_texts, cases, 1), "hit@3": hits(theirs_texts, cases, 3)},
        "p50_ratio_ours_over_tutorial": round(ours["p50_ms"] / theirs["p50_ms"], 2),
    }
    path = write_result("ask_latency", result)
    print(f"{len(questions)} questions × {args.rounds} rounds, warm, query and search caches cleared before each ask")
    print(f"{'':12}{'p50 ms':>9}{'p95 ms':>9}{'hit@1':>8}{'hit@3':>8}")
    for name in ("ours", "tutorial"):
        row = result[name]
        print(f"{name:12}{row['p50_ms']:9.1f}{row['p95_ms']:9.1f}{row['hit@1']:8.3f}{row['hit@3']:8.3f}")
    for name, row in (("bare embed", bare), ("bare torch", torch_bare)):
        print(f"{name:12}{row['p50_ms']:9.1f}{row['p95_ms']:9.1f}")
    print(f"ask / bare embed ({result['encoder']}) p50: {result['ask_over_bare_embed_p50']}×; "
          f"torch / {result['encoder']} bare p50: {result['bare_torch_over_bare_p50']}×")  # fmt: skip
    print(f"p50 ratio ours/tutorial: {result['p50_ratio_ours_over_tutorial']}×  → {path}")


if __name__ == "__main__":
    main()
