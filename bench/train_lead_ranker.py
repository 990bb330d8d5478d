"""Train the composer's lead ranker on the project's question sets; report leave-one-set-out figures.

    python -m bench.train_lead_ranker            # cross-validate, then write bot/stages/compose/lead_ranker.json
    python -m bench.train_lead_ranker --dry-run  # cross-validate only

Every answerable case with ``lead`` spans is asked as the engine asks it (conversations turn by turn); each
quotable sentence of the best passages is a candidate, labelled by whether its first sentence holds a lead
span. The model is a conditional logit (softmax over a question's candidates) with an L2 penalty, fitted by
gradient descent on standardised features. Questions the overview answers (its first item leads) are left
out: the ranker never chooses for them. Held-out figures: each set in turn is left out of training and
scored; the reported total is the share of all cases whose top-ranked candidate leads with an answer.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench.common import write_result

RANKER_FILE = Path(__file__).resolve().parent.parent / "bot" / "stages" / "compose" / "lead_ranker.json"


@dataclass
class Question:
    set_name: str
    case_id: str
    features: np.ndarray  # candidates × features
    leads: np.ndarray  # 1.0 where the candidate leads with an answer


def collect(depth: int) -> tuple[list[Question], dict[str, int]]:
    """Every answerable case's candidates and labels, and how many cases were set aside and why."""
    from bot.contract import Status
    from bot.engine import Engine
    from bot.evaluate.answer_shape import first_sentence, holds_any
    from bot.evaluate.loader import default_set_paths, load_question_sets
    from bot.settings import get_settings
    from bot.stages.compose.outline import outline
    from bot.stages.compose.ranking import features
    from bot.stages.compose.select import Evidence, candidate_units

    engine = Engine.load()
    compose = next(stage for stage in engine.chain.stages if stage.name == "compose")
    sets = load_question_sets(default_set_paths(), corpus_dir=get_settings().corpus_dir)
    questions: list[Question] = []
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
            asked = compose.question(state.query)
            if outline(asked, state.passages, partial(compose.chunks_of, state)):
                skipped["overview"] += 1
                continue
            passages = state.passages[:depth]
            words = compose._words(passages)
            vocabulary = asked.words | {w for sentence in words.values() for w in sentence}
            assert state.snapshot is not None
            evidence = Evidence(passages, state.sentence_vectors, words, state.snapshot.index.lexical.idf(vocabulary))
            units = candidate_units(asked, evidence, compose.settings, state.query_vector, state.own_vector)
            if not units:
                skipped["no candidate"] += 1
                continue
            matrix = np.array([features(u, asked, evidence.idf) for u in units])
            leads = np.array([holds_any(case.lead, first_sentence(u.text)) for u in units], dtype=np.float64)
            questions.append(Question(question_set.name, case.id, matrix, leads))
    return questions, skipped


def fit(questions: list[Question], *, l2: float, steps: int, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conditional-logit weights (with the mean and scale that standardise the features)."""
    stacked = np.vstack([q.features for q in questions])
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0) + 1e-9
    trainable = [((q.features - mean) / scale, q.leads / q.leads.sum()) for q in questions if q.leads.sum()]
    weights = np.zeros(stacked.shape[1])
    for _ in range(steps):
        gradient = l2 * weights
        for standardised, target in trainable:
            scores = standardised @ weights
            chance = np.exp(scores - scores.max())
            chance /= chance.sum()
            gradient = gradient + standardised.T @ (chance - target) / len(trainable)
        weights -= rate * gradient
    return mean, scale, weights


def leads_right(questions: list[Question], mean: np.ndarray, scale: np.ndarray, weights: np.ndarray) -> int:
    """How many questions' top-ranked candidate leads with an answer."""
    return sum(int(q.leads[int(np.argmax(((q.features - mean) / scale) @ weights))] > 0) for q in questions)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="cross-validate without writing the weights")
    parser.add_argument("--l2", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=0.5)
    args = parser.parse_args(argv)
    from bot.stages.compose.ranking import FEATURES, LeadRanker
    from bot.stages.compose.select import ComposeSettings

    questions, skipped = collect(ComposeSettings().depth)
    reachable = sum(int(q.leads.sum() > 0) for q in questions)
    print(f"{len(questions)} questions ranked ({reachable} with a lead among the candidates); set aside: {skipped}")
    folds = {}
    for held_out in sorted({q.set_name for q in questions}):
        training = [q for q in questions if q.set_name != held_out]
        tested = [q for q in questions if q.set_name == held_out]
        right = leads_right(tested, *fit(training, l2=args.l2, steps=args.steps, rate=args.rate))
        folds[held_out] = {"right": right, "questions": len(tested), "share": round(right / len(tested), 3)}
        print(f"  held out {held_out:14} {right:3d}/{len(tested):3d} = {right / len(tested):.3f}")
    total = sum(f["right"] for f in folds.values())
    print(f"  held-out total      {total:3d}/{len(questions):3d} = {total / len(questions):.3f}")
    mean, scale, weights = fit(questions, l2=args.l2, steps=args.steps, rate=args.rate)
    print(f"  trained on all      {leads_right(questions, mean, scale, weights):3d}/{len(questions):3d}")
    for name, weight in zip(FEATURES, weights, strict=True):
        print(f"    {name:16} {weight:+.3f}")
    about = {
        "command": "python -m bench.train_lead_ranker",
        "questions": len(questions),
        "held_out": folds,
        "held_out_share": round(total / len(questions), 3),
        "l2": args.l2,
    }
    write_result("lead_ranker", about)
    if not args.dry_run:
        RANKER_FILE.write_text(LeadRanker(mean, scale, weights).to_json(**about), encoding="utf-8")
        print(f"Wrote {RANKER_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
