"""How the grounding guard's thresholds separate right citations from wrong ones, on the eval sets.

For every sentence the extractive answers quote (core + conversations), the guard's support test is run
twice: against the passage it came from (should pass) and against another retrieved passage (a wrong
citation: should fail). Prints acceptance and rejection rates for a grid of thresholds around the
configured ones. Run: ``python -m bench.guard_calibration``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from bench.common import SETS, write_result


def main() -> None:
    """Score every quoted sentence against its own and a wrong passage, for each threshold pair."""
    import yaml

    from bot.engine.engine import Engine
    from bot.stages.guard import GuardSettings, check_generated_sentence
    from bot.stages.state import Support

    engine = Engine.load()
    questions = [
        case.get("question") or case["turns"][-1]
        for name in ("core", "conversations")
        for case in yaml.safe_load((SETS / f"{name}.yaml").read_text(encoding="utf-8"))["cases"]
        if case["expect"] == "answer"
    ]
    pairs = []  # (sentence with [1], facts, passages, vectors, is_right)
    for question in questions:
        turn = engine.chain.run_through(engine.new_state(question, []), "compose")
        claims = turn.facts
        passages = {p.chunk.chunk_id: p.chunk for p in turn.passages}
        for claim in claims:
            others = [p for p in turn.passages[:3] if p.chunk.chunk_id != claim.support[0].chunk_id]
            if claim.is_list or not others:
                continue
            first = others[0].chunk.sentences[0]
            wrong = replace(claim, support=(Support(others[0].chunk.chunk_id, first.start, first.end),))
            pairs.append((f"{claim.text} [1]", [claim], passages, turn.sentence_vectors, True))
            pairs.append((f"{claim.text} [1]", [wrong], passages, turn.sentence_vectors, False))

    def embed(text: str) -> np.ndarray:
        return np.asarray(engine.embeddings.embed_query(text), dtype=np.float32)

    grid = []
    for similarity, overlap in itertools.product([0.5, 0.55, 0.6, 0.65, 0.7], [0.4, 0.5, 0.6]):
        settings = GuardSettings(similarity, overlap)
        verdicts = [(right, check_generated_sentence(s, f, p, v, embed, settings).claim is not None)
                    for s, f, p, v, right in pairs]  # fmt: skip
        right = [ok for is_right, ok in verdicts if is_right]
        wrong = [ok for is_right, ok in verdicts if not is_right]
        grid.append({"min_similarity": similarity, "min_overlap": overlap,
                     "right_citations_accepted": round(sum(right) / len(right), 3),
                     "wrong_citations_rejected": round(1 - sum(wrong) / len(wrong), 3)})  # fmt: skip
    path = write_result("guard_calibration", {"pairs": len(pairs), "grid": grid})
    print(f"{len(pairs) // 2} quoted sentences, each cited rightly and wrongly")
    print(f"{'similarity':>10} {'overlap':>8} {'right kept':>11} {'wrong removed':>14}")
    for row in grid:
        print(
            f"{row['min_similarity']:>10} {row['min_overlap']:>8} {row['right_citations_accepted']:>11.3f} "
            f"{row['wrong_citations_rejected']:>14.3f}"
        )
    print(f"→ {path}")


if __name__ == "__main__":
    main()
