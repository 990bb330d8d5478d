"""Corpus-scale benchmark: index build throughput, one-article re-index, ``ask`` latency, cold start.

Builds a synthetic corpus (``bench.synthetic_corpus``, ~40 passages per article), then measures in one run:
the bare sentence-transformers encode rate on a sample of the same texts (the baseline), a full index
build (passages/s, embedding texts/s, peak memory), re-indexing after a one-article edit, warm ``ask``
p50/p95 in embedded mode and through a real ``chroma run`` server on the same data, and cold start
(process start → ready) in a fresh process. Run: ``python -m bench.scale [--articles 1000]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import answerable_cases, summary, timed, write_result
from bench.synthetic_corpus import write_corpus


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_encode_rate(model_path: Path, texts: list[str]) -> float:
    """Texts/s of ``SentenceTransformer.encode`` alone (the same model files), same batch size as indexing."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu")
    model.encode(texts[:64], batch_size=32)  # warm-up
    started = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True)
    return len(texts) / (time.perf_counter() - started)


def ask_latency(engine, questions: list[str]) -> dict[str, float]:
    """Warm ``ask`` timings with the query caches cleared before each question."""
    for question in questions[:5]:
        engine.ask(question)
    timings = []
    for question in questions:
        engine.cache_clear()
        timings.append(timed(lambda q=question: engine.ask(q))[1])
    return summary(timings)


def cold_start(env: dict[str, str]) -> float:
    """Seconds from starting a new Python process to an engine ready to answer (existing index)."""
    code = "import time; from bot.pipeline import Engine; Engine.load(); print(time.time())"
    started = time.time()
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(output.stdout.strip().splitlines()[-1]) - started


def main() -> None:
    """Run every measurement and save them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--sample-articles", type=int, default=20, help="articles whose texts time the bare model")
    args = parser.parse_args()

    from bot.chunking import chunk_document
    from bot.corpus import load_document
    from bot.embedding import load_embeddings, resolve_model_path
    from bot.index import _forget_chroma_clients, build_index, open_index, quotable_sentences
    from bot.pipeline import Engine
    from bot.settings import Settings
    from tests.chroma_server import chroma_server

    result: dict = {"articles": args.articles}
    with tempfile.TemporaryDirectory() as scratch:
        corpus, index_dir = Path(scratch) / "corpus", Path(scratch) / "index"
        paths = write_corpus(corpus, args.articles)
        settings = Settings(corpus_dir=corpus, index_dir=index_dir)
        embeddings = load_embeddings()
        rss_before = rss_mb()

        sample = [c for p in paths[: args.sample_articles] for c in chunk_document(load_document(p, corpus))]
        texts = [c.plain_text for c in sample] + [c.sentence_text(s) for c in sample for _, s in quotable_sentences(c)]
        bare = bare_encode_rate(resolve_model_path(settings.embedding_model), texts)

        report = build_index(settings, embeddings, show_progress=True)
        ours = report.embedded_texts / report.embedding_seconds
        result["build"] = {
            "passages": report.chunk_count,
            "texts_embedded": report.embedded_texts,
            "seconds": round(report.seconds, 1),
            "passages_per_s": round(report.chunk_count / report.seconds, 1),
            "embedding_texts_per_s": round(ours, 1),
            "bare_encode_texts_per_s": round(bare, 1),
            "embedding_vs_bare": round(ours / bare, 3),
            "peak_rss_mb": round(rss_mb(), 1),
            "rss_before_build_mb": round(rss_before, 1),
        }
        print(
            f"build: {report.chunk_count} passages in {report.seconds:.0f} s; embedding {ours:.0f} texts/s "
            f"vs bare {bare:.0f} texts/s ({ours / bare:.0%})"
        )

        edited = paths[len(paths) // 2]
        edited.write_text(edited.read_text(encoding="utf-8").replace(".", ", really.", 1), encoding="utf-8")
        _, seconds = timed(lambda: build_index(settings, embeddings))
        result["one_article_reindex_s"] = round(seconds / 1000, 3)
        print(f"one-article re-index: {seconds / 1000:.2f} s")

        questions = [c["question"] for c in answerable_cases("core")]
        engine = Engine(settings, open_index(settings, embeddings, rebuild=False), embeddings)
        result["ask_embedded"] = ask_latency(engine, questions)
        print(f"ask, embedded: {result['ask_embedded']}")
        env = {**os.environ, "BOT_CORPUS_DIR": str(corpus), "BOT_INDEX_DIR": str(index_dir)}
        result["cold_start_embedded_s"] = round(cold_start(env), 2)
        print(f"cold start, embedded: {result['cold_start_embedded_s']} s")

        del engine
        _forget_chroma_clients()
        with chroma_server(index_dir / "chroma") as url:
            server = settings.model_copy(update={"chroma_url": url})
            engine = Engine(server, open_index(server, embeddings, rebuild=False), embeddings)
            result["ask_server"] = ask_latency(engine, questions)
            print(f"ask, server: {result['ask_server']}")
            result["cold_start_server_s"] = round(cold_start({**env, "BOT_CHROMA_URL": url}), 2)
            print(f"cold start, server: {result['cold_start_server_s']} s")

    print(f"→ {write_result('scale', result)}")


if __name__ == "__main__":
    main()
