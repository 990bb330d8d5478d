"""Fixtures of the eval harness tests: the real question sets, and one real run of them per session."""

from __future__ import annotations

import pytest

from bot.evaluate.loader import QuestionSet, default_set_paths, load_question_sets
from bot.evaluate.runner import EvaluationRun, run_evaluation
from bot.settings import PROJECT_ROOT

CORPUS = PROJECT_ROOT / "corpus"


@pytest.fixture(scope="session")
def question_sets() -> list[QuestionSet]:
    return load_question_sets(default_set_paths(), corpus_dir=CORPUS)


@pytest.fixture(scope="session")
def evaluation(engine, question_sets: list[QuestionSet]) -> EvaluationRun:
    """Every case of every set through the session's real engine: what `make eval` runs, in process."""
    return run_evaluation(engine, question_sets)
