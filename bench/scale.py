"""Corpus-scale benchmark: index build throughput, one-article re-index, ``ask`` latency, cold start.

Builds a synthetic corpus (``bench.synthetic_corpus``, ~40 passages per article), then measures in one run:
the bare sentence-transformers encode rate on a sample of the same texts (the baseline, before and after the
build), a full index build (passages/s, the model's texts/s, the store's write time, peak memory),
re-indexing after a one-article edit (in a running process and as ``python -m bot index``), and — in a fresh
process that opens the index the build made, as a server would — warm ``ask`` p50/p95 in embedded mode and
through a real ``chroma run`` server on the same data, and cold start (process start → engine ready).
Run: ``python -m bench.scale [--articles 1000] [--workdir DIR [--reuse]]``."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from bench.common import answerable_cases, summary, timed, write_result
from bench.servers import chroma_server
from bench.synthetic_corpus import write_corpus


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_model(model_path: Path):
    """The same model files loaded by sentence-transformers alone (the baseline), warmed up."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu")
    model.encode(["warm-up"] * 64, batch_size=32)
    return model


def bare_encode_ms(model, texts: list[str]) -> float:
    """Milliseconds ``SentenceTransformer.encode`` alone takes for ``texts``, same batch size as indexing."""
    return timed(partial(model.encode, texts, batch_size=32, normalize_embeddings=True))[1]


def bare_encode_rate(model, texts: list[str]) -> float:
    """Texts/s of ``SentenceTransformer.encode`` alone."""
    return len(texts) / (bare_encode_ms(model, texts) / 1000)


def same_texts_ratio(model, embeddings, texts: list[str], rounds: int = 3) -> float:
    """Our embedding path's rate over bare sentence-transformers' on the same texts (median of ``rounds``).

    The two alternate, so a machine whose speed drifts during the run slows both alike.
    """
    embeddings.embed_documents(texts[:64])  # warm-up
    ratios = []
    for _ in range(rounds):
        bare_ms = bare_encode_ms(model, texts)
        ratios.append(bare_ms / timed(partial(embeddings.embed_documents, texts))[1])
    return statistics.median(ratios)


def ask_latency(engine, questions: list[str], rounds: int = 3) -> dict[str, float]:
    """Warm ``ask`` timings over ``rounds`` passes, the query caches cleared before each question.

    Passage records and sentence vectors stay cached by content id, as in a running server; the first pass
    is the one that still reads most of them from the store, so it is reported on its own as well.
    """
    for question in ("knee pain after the leg press", "warm-up", "how far should I lower the sled"):
        engine.ask(question)
    timings = []
    for question in questions * rounds:
        engine.cache_clear()
        timings.append(timed(partial(engine.ask, question))[1])
    first = summary(timings[: len(questions)])
    return summary(timings) | {"first_pass_p50_ms": first["p50_ms"], "first_pass_p95_ms": first["p95_ms"]}


def cold_start(env: dict[str, str]) -> float:
    """Seconds from starting a new Python process to an engine ready to answer (existing index)."""
    code = "import time; from bot.engine.engine import Engine; Engine.load(); print(time.time())"
    started = time.time()
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(output.stdout.strip().splitlines()[-1]) - started


def measure_build(settings, embeddings, paths: list[Path], sample_articles: int) -> dict[str, object]:
    """A full index build against the bare encode rate of the same kind of texts.

    The bare rate is measured just before and just after the build and the faster one kept, so a noisy
    moment on the machine can only make our ratio look worse, never better.
    """
    from bot.content.chunking import chunk_document
    from bot.content.corpus import load_document
    from bot.index import build_index, quotable_sentences
    from bot.models.embedding import resolve_model_path

    rss_before = rss_mb()
    sample = [c for p in paths[:sample_articles] for c in chunk_document(load_document(p, settings.corpus_dir))]
    texts = [c.plain_text for c in sample] + [c.sentence_text(s) for c in sample for _, s in quotable_sentences(c)]
    bare = bare_model(resolve_model_path(settings.embedding_model))
    bare_before = bare_encode_rate(bare, texts)
    alternating = same_texts_ratio(bare, embeddings, texts)

    report = build_index(settings, embeddings, show_progress=True)
    peak_rss = rss_mb()
    bare_after = bare_encode_rate(bare, texts)
    baseline = max(bare_before, bare_after)
    ours = report.embedded_texts / report.embedding_seconds
    end_to_end = report.embedded_texts / (report.embedding_seconds + report.store_seconds)
    print(
        f"build: {report.chunk_count} passages in {report.seconds:.0f} s; embedding {ours:.0f} texts/s vs bare "
        f"{baseline:.0f} texts/s ({ours / baseline:.0%}); with the store's writes {end_to_end:.0f} texts/s; "
        f"on the same {len(texts)} texts, alternating with bare: {alternating:.0%}"
    )
    return {
        "passages": report.chunk_count,
        "texts_embedded": report.embedded_texts,
        "seconds": round(report.seconds, 1),
        "passages_per_s": round(report.chunk_count / report.seconds, 1),
        "embedding_seconds": round(report.embedding_seconds, 1),
        "store_write_seconds": round(report.store_seconds, 1),
        "embedding_texts_per_s": round(ours, 1),
        "bare_encode_texts_per_s": round(baseline, 1),
        "bare_encode_before_after": [round(bare_before, 1), round(bare_after, 1)],
        "embedding_vs_bare": round(ours / baseline, 3),
        "same_texts_alternating_vs_bare": round(alternating, 3),
        "embedded_and_stored_texts_per_s": round(end_to_end, 1),
        "peak_rss_mb": round(peak_rss, 1),
        "rss_before_build_mb": round(rss_before, 1),
    }


def measure_reindex(settings, embeddings, paths: list[Path], env: dict[str, str]) -> dict[str, float]:
    """Re-index after editing one article: in a process that has the index open, and as the CLI command."""
    from bot.index import build_index, open_index

    open_index(settings, embeddings, rebuild=False)  # a running indexer: store and model already loaded
    warm = edit_and_time(paths[len(paths) // 2], lambda: build_index(settings, embeddings))
    command = [sys.executable, "-m", "bot", "index"]
    cli = edit_and_time(
        paths[len(paths) // 3], lambda: subprocess.run(command, env=env, capture_output=True, check=True)
    )
    print(f"one-article re-index: {warm:.2f} s in a running process, {cli:.2f} s as `python -m bot index`")
    return {"one_article_reindex_s": round(warm, 3), "one_article_reindex_cli_s": round(cli, 3)}


def edit_and_time(article: Path, reindex) -> float:
    """Seconds ``reindex`` takes after one sentence of ``article`` changed."""
    article.write_text(article.read_text(encoding="utf-8").replace(".", ", really.", 1), encoding="utf-8")
    return timed(reindex)[1] / 1000


def measure_serving(settings, embeddings, env: dict[str, str]) -> dict[str, object]:
    """``ask`` latency (three rounds of the core questions) and cold start, embedded and through a Chroma server."""
    from bot.index.store import forget_chroma_clients

    result = serving_figures("embedded", settings, embeddings, env)
    forget_chroma_clients()
    with chroma_server(settings.index_dir / "chroma") as url:
        server = settings.model_copy(update={"chroma_url": url})
        result |= serving_figures("server", server, embeddings, {**env, "BOT_CHROMA_URL": url})
    return result


def serving_figures(mode: str, settings, embeddings, env: dict[str, str]) -> dict[str, object]:
    """Warm ``ask`` p50/p95 and cold start against one store, keyed by ``mode``."""
    from bot.engine.engine import Engine
    from bot.index import open_index

    engine = Engine(settings, open_index(settings, embeddings, rebuild=False), embeddings)
    figures = {
        f"ask_{mode}": ask_latency(engine, [c["question"] for c in answerable_cases("core")]),
        f"cold_start_{mode}_s": round(cold_start(env), 2),
    }
    print(f"{mode}: ask {figures[f'ask_{mode}']}, cold start {figures[f'cold_start_{mode}_s']} s")
    return figures


def main() -> None:
    """Run every measurement and save them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--sample-articles", type=int, default=20, help="articles whose texts time the bare model")
    parser.add_argument("--workdir", type=Path, help="keep the corpus and index here (default: a temporary folder)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="the workdir holds this benchmark's index: skip the build, measure the rest",
    )
    parser.add_argument("--serving", action="store_true", help=argparse.SUPPRESS)  # the fresh process, below
    args = parser.parse_args()
    if (args.reuse or args.serving) and not args.workdir:
        parser.error("--reuse needs --workdir")

    from bot.models.embedding import load_embeddings
    from bot.settings import Settings

    result: dict = {"articles": args.articles}
    with ExitStack() as stack:
        scratch = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        corpus, index_dir = scratch / "corpus", scratch / "index"
        settings = Settings(corpus_dir=corpus, index_dir=index_dir)
        env = {**os.environ, "BOT_CORPUS_DIR": str(corpus), "BOT_INDEX_DIR": str(index_dir)}
        embeddings = load_embeddings()
        if args.serving:
            print(json.dumps(measure_serving(settings, embeddings, env)))
            return
        paths = sorted(corpus.glob("*.md")) if args.reuse else write_corpus(corpus, args.articles)
        if args.reuse:
            result["reused_index"] = str(index_dir)
        else:
            result["build"] = measure_build(settings, embeddings, paths, args.sample_articles)
        result.update(measure_reindex(settings, embeddings, paths, env))

        # A server answers from an index another process built: measure it in a fresh process, as deployed
        # (right after a 40k-passage build the builder's own process answered several times slower).
        serving = [sys.executable, "-m", "bench.scale", "--serving", "--workdir", str(scratch)]
        *progress, figures = subprocess.run(serving, stdout=subprocess.PIPE, text=True, check=True).stdout.splitlines()
        print(*progress, sep="\n")
        result.update(json.loads(figures))

    print(f"→ {write_result('scale', result)}")


if __name__ == "__main__":
    main()
