"""Which sentence leads: a linear ranker over readable features, trained on the project's own question sets.

The features say how close a sentence is to the question (in meaning, in words, in the member's own words of
this turn), whether it has the cue of the kind of answer asked for or states the number asked for, the
headings it sits under, how much it says beyond the question, and whether it is framing. The weights live in
``composer_weights.json`` beside this module; ``python -m bench.train_composer`` retrains them (leave-one-set-out
cross-validation, figures printed) and rewrites the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np

from bot.language.discourse import answers_kind, is_framing
from bot.stages.compose.candidates import (
    Candidate,
    Question,
    answers_number,
    novelty,
    repeats_previous,
    weighted_share,
)

#: The features, in the order of the weights file.
FEATURES = (
    "similarity",
    "own_similarity",
    "overlap",
    "own_overlap",
    "rank",
    "kind",
    "number",
    "number_missing",
    "heading",
    "novelty",
    "framing",
    "list",
    "pair",
    "length",
    "opens",
    "repeated",
)
WEIGHTS_FILE = "composer_weights.json"


def features(unit: Candidate, question: Question, idf: Mapping[str, float]) -> np.ndarray:
    """The unit's features as the lead of an answer to ``question`` (see ``FEATURES``)."""
    weights = idf or dict.fromkeys(question.focus | question.own_focus, 1.0)
    asks_number = question.asked.unit is not None
    states = asks_number and answers_number(unit, question)
    return np.array(
        [
            unit.similarity,
            unit.own_similarity,
            weighted_share(question.words, set(unit.words), weights),
            weighted_share(question.own_focus, set(unit.words) | set(unit.context_words), weights)
            if question.own_focus
            else 0.0,
            1.0 / (unit.passage_rank + 1),
            float(answers_kind(unit.text, question.asked.kind)),
            float(states),
            float(question.asked.strict and not states),
            weighted_share(question.focus, set(unit.context_words), weights) if question.focus else 0.0,
            novelty(unit.words, question.own, idf),
            float(is_framing(unit.text)),
            float(unit.sentences[-1].is_list),
            float(len(unit.sentences) > 1),
            math.log(max(len(unit.text), 1)),
            float(unit.opens),
            float(repeats_previous(unit, question)),
        ]
    )


@dataclass(frozen=True)
class Linear:
    """A linear score over standardised features."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float = 0.0

    def __call__(self, values: np.ndarray) -> float:
        """The score of one feature vector."""
        return float(((values - self.mean) / self.scale) @ self.weights + self.bias)

    def to_dict(self) -> dict[str, object]:
        """The model as JSON-ready data (one entry per feature)."""
        rows = zip(self.names, self.mean.tolist(), self.scale.tolist(), self.weights.tolist(), strict=True)
        return {"bias": self.bias, "features": {n: {"mean": m, "scale": s, "weight": w} for n, m, s, w in rows}}

    @classmethod
    def from_dict(cls, names: tuple[str, ...], data: Mapping[str, object]) -> Linear:
        """A model from ``to_dict``'s form; every one of ``names`` must be in it."""
        entry = data["features"]
        assert isinstance(entry, Mapping)
        rows = [(entry[n]["mean"], entry[n]["scale"], entry[n]["weight"]) for n in names]
        mean, scale, weights = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
        bias = data.get("bias", 0.0)
        return cls(names, mean, scale, weights, float(bias) if isinstance(bias, int | float) else 0.0)


@dataclass(frozen=True)
class LeadRanker:
    """Ranks the candidates for the lead: the highest score leads."""

    model: Linear

    def score(self, unit: Candidate, question: Question, idf: Mapping[str, float]) -> float:
        """How well ``unit`` answers ``question`` as the reply's first sentence."""
        return self.model(features(unit, question, idf))


def weights_text(lead: Linear, **about: object) -> str:
    """The weights file's text (``about``: how the model was trained, kept alongside)."""
    return json.dumps({"about": about, "lead": lead.to_dict()}, indent=2) + "\n"


@cache
def default_ranker() -> LeadRanker:
    """The shipped ranker (``composer_weights.json``), read once."""
    data = json.loads(files("bot.stages.compose").joinpath(WEIGHTS_FILE).read_text(encoding="utf-8"))
    return LeadRanker(Linear.from_dict(FEATURES, data["lead"]))
