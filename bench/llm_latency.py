"""Generative composer latency: time to first token, to the first verified sentence, and to the full answer.

Runs the same questions through the engine with ``--composer`` (default ``local``) and, as the baseline in
the same run, with the extractive composer; prints medians, p95 and how often the guard fell back.
Run: ``python -m bench.llm_latency [--composer local] [--questions 40]``.
"""

from __future__ import annotations

import argparse

from bench.common import answerable_cases, summary, timed, write_result


def main() -> None:
    """Measure both composers and save the comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--composer", default="local")
    parser.add_argument("--questions", type=int, default=40)
    args = parser.parse_args()

    from bot.contract import Answer
    from bot.engine.engine import Engine

    engine = Engine.load()
    generative = engine.with_composer(args.composer)
    if generative.composer != args.composer:
        raise SystemExit(f"{args.composer} is unavailable: {generative.composer_problem}")
    questions = [c["question"] for c in answerable_cases("core")][: args.questions]
    generative.ask(questions[0])  # load the model

    first_token, first_text, total, baseline = [], [], [], []
    fell_back = removed = 0
    for question in questions:
        engine.cache_clear()
        baseline.append(timed(lambda q=question: engine.ask(q))[1])
        engine.cache_clear()
        pieces, elapsed = timed(lambda q=question: list(generative.stream(q)))
        answer = pieces[-1]
        assert isinstance(answer, Answer)
        total.append(elapsed)
        if "first_token" in answer.timings_ms:
            first_token.append(answer.timings_ms["first_token"])
        first_text.append(answer.timings_ms.get("first_text", elapsed))
        fell_back += answer.fallback is not None
        removed += answer.removed_sentences

    result = {
        "composer": args.composer,
        "questions": len(questions),
        "first_token": summary(first_token),
        "first_verified_text": summary(first_text),
        "total": summary(total),
        "extractive_total": summary(baseline),
        "fallback_rate": round(fell_back / len(questions), 3),
        "removed_sentences": removed,
    }
    path = write_result("llm_latency", result)
    print(f"{len(questions)} questions, composer {args.composer} (guarded), extractive as the baseline")
    for name in ("first_token", "first_verified_text", "total", "extractive_total"):
        row = result[name]
        print(f"  {name:22} p50 {row['p50_ms']:8.0f} ms   p95 {row['p95_ms']:8.0f} ms")
    print(f"  fell back to extractive: {result['fallback_rate']:.0%}; sentences removed by the guard: {removed}")
    print(f"→ {path}")


if __name__ == "__main__":
    main()
