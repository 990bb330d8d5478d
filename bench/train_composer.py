"""Train the composer's lead ranker on the project's question sets, with held-out figures.

    python -m bench.train_composer            # cross-validate, then write bot/stages/compose/composer_weights.json
    python -m bench.train_composer --dry-run  # cross-validate only

Every answerable case with ``lead`` spans is asked as the engine asks it (conversations turn by turn). Each
quotable sentence of the best passages is a lead candidate, labelled by whether its first sentence holds a
lead span; the model is a conditional logit (a softmax over one question's candidates) with an L2 penalty,
fitted by gradient descent on standardised features. Questions an overview answers are left out: the ranker
never chooses for them. (Points after the lead are judged by rules, ``ByRules``: a logistic model trained the
same way on the ``relevant`` spans did no better held out, so the simpler judge stays.)

Held-out figures: each set in turn is left out of training and scored.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench.common import write_result

WEIGHTS_FILE = Path(__file__).resolve().parent.parent / "bot" / "stages" / "compose" / "composer_weights.json"


@dataclass
class Case:
    set_name: str
    case_id: str
    lead_features: np.ndarray  # candidates × features
    leads: np.ndarray  # 1.0 where the candidate leads with an answer


def collect() -> tuple[list[Case], dict[str, int]]:
    """Every answerable case's lead candidates with labels, and how many were set aside and why."""
    from bot.contract import Status
    from bot.engine import Engine
    from bot.evaluate.answer_shape import first_sentence, holds_any
    from bot.evaluate.loader import default_set_paths, load_question_sets
    from bot.settings import get_settings
    from bot.stages.compose.candidates import Evidence, candidate_units, lemmas
    from bot.stages.compose.outline import outline
    from bot.stages.compose.ranking import features

    engine = Engine.load()
    compose = next(stage for stage in engine.chain.stages if stage.name == "compose")
    sets = load_question_sets(default_set_paths(), corpus_dir=get_settings().corpus_dir)
    cases: list[Case] = []
    skipped = {"not answered": 0, "overview": 0, "no candidate": 0}
    for question_set in sets:
        for case in question_set.cases:
            if case.expect != "answer" or not case.lead:
                continue
            history: list[dict[str, str]] = []
            for turn in case.earlier_turns:
                reply = engine.ask(turn, list(history))
                history += [{"role": "user", "content": turn}, {"role": "assistant", "content": reply.answer}]
            state = engine.chain.run_through(engine.new_state(case.scored_question, history), "triage")
            if state.status is not Status.answered or state.query is None or state.query_vector is None:
                skipped["not answered"] += 1
                continue
            asked = compose.question(state.query, state.passages)
            if outline(asked, state.passages, partial(compose.chunks_of, state)):
                skipped["overview"] += 1
                continue
            assert state.snapshot is not None
            passages = state.passages[: compose.settings.depth]
            words = compose._words(passages)
            vocabulary = asked.words | {w for sentence in words.values() for w in lemmas(sentence)}
            evidence = Evidence(passages, state.sentence_vectors, words, state.snapshot.index.lexical.idf(vocabulary))
            units = candidate_units(asked, evidence, compose.settings, state.query_vector, state.own_vector)
            if not units:
                skipped["no candidate"] += 1
                continue
            lead_matrix = np.array([features(u, asked, evidence.idf) for u in units])
            leads = np.array([holds_any(case.lead, first_sentence(u.text)) for u in units], dtype=np.float64)
            entry = Case(question_set.name, case.id, lead_matrix, leads)
            cases.append(entry)
    return cases, skipped


def standardise(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    stacked = np.vstack(rows)
    return stacked.mean(axis=0), stacked.std(axis=0) + 1e-9


def fit_lead(cases: list[Case], *, l2: float, steps: int, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conditional-logit weights for the lead (with the mean and scale that standardise the features)."""
    mean, scale = standardise([c.lead_features for c in cases])
    trainable = [((c.lead_features - mean) / scale, c.leads / c.leads.sum()) for c in cases if c.leads.sum()]
    weights = np.zeros(len(mean))
    for _ in range(steps):
        gradient = l2 * weights
        for standardised, target in trainable:
            scores = standardised @ weights
            chance = np.exp(scores - scores.max())
            chance /= chance.sum()
            gradient = gradient + standardised.T @ (chance - target) / len(trainable)
        weights -= rate * gradient
    return mean, scale, weights


def chosen_lead(case: Case, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray) -> int:
    return int(np.argmax(((case.lead_features - mean) / scale) @ weights))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="cross-validate without writing the weights")
    parser.add_argument("--l2", type=float, default=0.05)
    args = parser.parse_args(argv)
    from bot.stages.compose.ranking import FEATURES, Linear, weights_text

    cases, skipped = collect()
    reachable = sum(int(c.leads.sum() > 0) for c in cases)
    print(f"{len(cases)} questions ranked ({reachable} with a lead among the candidates); set aside: {skipped}")
    folds = {}
    for held_out in sorted({c.set_name for c in cases}):
        training = [c for c in cases if c.set_name != held_out]
        tested = [c for c in cases if c.set_name == held_out]
        model = fit_lead(training, l2=args.l2, steps=1500, rate=0.5)
        right = sum(int(c.leads[chosen_lead(c, *model)] > 0) for c in tested)
        folds[held_out] = {"right": right, "questions": len(tested), "share": round(right / len(tested), 3)}
        print(f"  held out {held_out:14} {right:3d}/{len(tested):3d} = {right / len(tested):.3f}")
    total = sum(f["right"] for f in folds.values())
    print(f"  held-out total      {total:3d}/{len(cases):3d} = {total / len(cases):.3f}")
    mean, scale, weights = fit_lead(cases, l2=args.l2, steps=1500, rate=0.5)
    trained = sum(int(c.leads[chosen_lead(c, mean, scale, weights)] > 0) for c in cases)
    print(f"  trained on all      {trained:3d}/{len(cases):3d}")
    for name, weight in zip(FEATURES, weights, strict=True):
        print(f"    {name:16} {weight:+.3f}")
    about = {
        "command": "python -m bench.train_composer",
        "questions": len(cases),
        "held_out": folds,
        "held_out_share": round(total / len(cases), 3),
        "l2": args.l2,
    }
    write_result("train_composer", about)
    if not args.dry_run:
        WEIGHTS_FILE.write_text(weights_text(Linear(FEATURES, mean, scale, weights), **about), encoding="utf-8")
        print(f"Wrote {WEIGHTS_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
