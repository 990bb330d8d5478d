"""The harness scores what the engine returns, not what it says about itself: broken engines must fail."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest

from bot.contract import Answer
from bot.engine.engine import Engine
from bot.evaluate.gate import THRESHOLDS_FILE, check_gate, load_thresholds
from bot.evaluate.loader import QuestionSet
from bot.evaluate.runner import EvaluationRun, run_case, run_evaluation, select_cases
from bot.policy import DISCLAIMER

pytestmark = [pytest.mark.integration]


def subset(question_sets: list[QuestionSet], name: str, *ids: str) -> QuestionSet:
    """A set with a few of the named set's cases, under the same name (so its thresholds apply)."""
    full = next(s for s in question_sets if s.name == name)
    return replace(full, cases=tuple(c for c in full.cases if c.id in ids))


class BrokenEngine:
    """The real engine with one deliberate fault in its replies."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        return self.break_(self.engine.ask(question, history))

    def break_(self, answer: Answer) -> Answer:
        return answer


class DropsTheDisclaimer(BrokenEngine):
    """Leaves the disclaimer off the reply text while still claiming it in the ``disclaimer`` field."""

    def break_(self, answer: Answer) -> Answer:
        return answer.model_copy(update={"answer": answer.answer.removesuffix(answer.disclaimer).rstrip()})


class CitesAPassageItDidNotRetrieve(BrokenEngine):
    """Swaps the first citation's passage for an article passage that was not retrieved (quote kept verbatim)."""

    def break_(self, answer: Answer) -> Answer:
        retrieved = {p.chunk_id for p in answer.passages}
        other = next(c for c in self.engine.index.passages.values() if c.chunk_id not in retrieved)
        citations = list(answer.citations)
        if citations:
            citations[0] = citations[0].model_copy(update={"chunk_id": other.chunk_id, "text": other.text,
                                                           "quote": other.text[:60]})  # fmt: skip
        return answer.model_copy(update={"citations": citations})


class QuotesWhatThePassageDoesNotSay(BrokenEngine):
    """Replaces the first citation's quote with a claim that is in no passage."""

    def break_(self, answer: Answer) -> Answer:
        citations = list(answer.citations)
        if citations:
            citations[0] = citations[0].model_copy(update={"quote": "Always lock your knees hard at the top."})
        return answer.model_copy(update={"citations": citations})


class CrashesOnMarkup(BrokenEngine):
    """Raises on any question with markup in it, like an unguarded HTML parser would."""

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        if "<" in question:
            raise RuntimeError("parser exploded")
        return self.engine.ask(question, history)


class UnderstatesItsLatency(BrokenEngine):
    """Takes 60 ms per reply but reports 0.1 ms in its own timings."""

    def break_(self, answer: Answer) -> Answer:
        time.sleep(0.06)
        return answer.model_copy(update={"timings_ms": {"total": 0.1}})


def misses(run: EvaluationRun) -> list[str]:
    return [f"{c.scope} {c.metric}" for c in check_gate(run.set_summaries(), load_thresholds(THRESHOLDS_FILE)).misses]


def failures(run: EvaluationRun) -> dict[str, list[str]]:
    return {r.name: r.failures for r in run.results if not r.passed}


def test_a_reply_without_the_disclaimer_fails_by_name(engine: Engine, question_sets) -> None:
    run = run_evaluation(DropsTheDisclaimer(engine), [subset(question_sets, "core", "foot-width", "lock-out-top")])
    assert failures(run) == {
        "core/foot-width": ["the disclaimer is missing from the end of the reply"],
        "core/lock-out-top": ["the disclaimer is missing from the end of the reply"],
    }
    assert {"core disclaimer", "all disclaimer"} <= set(misses(run))


def test_citing_a_passage_that_was_not_retrieved_fails_citation_validity(engine: Engine, question_sets) -> None:
    run = run_evaluation(CitesAPassageItDidNotRetrieve(engine), [subset(question_sets, "core", "foot-width")])
    assert failures(run) == {
        "core/foot-width": ["invalid citation: citation [1] cites a passage that was not retrieved"]
    }
    assert "core citation_validity" in misses(run)


def test_a_quote_that_is_not_in_its_passage_fails_citation_validity(engine: Engine, question_sets) -> None:
    run = run_evaluation(QuotesWhatThePassageDoesNotSay(engine), [subset(question_sets, "core", "lock-out-top")])
    assert failures(run) == {
        "core/lock-out-top": ["invalid citation: citation [1] quotes text that is not in its passage"]
    }
    assert "core citation_validity" in misses(run)


def test_a_crash_is_recorded_on_its_case_and_the_run_goes_on(engine: Engine, question_sets) -> None:
    adversarial = subset(question_sets, "adversarial", "markup-script", "sql-only", "empty-string")
    run = run_evaluation(CrashesOnMarkup(engine), [adversarial])
    assert failures(run) == {"adversarial/markup-script": ["crashed: RuntimeError: parser exploded"]}
    assert [r.passed for r in run.results] == [False, True, True]
    assert run.set_summaries()["adversarial"].crashes == 1
    assert "adversarial crash_free" in misses(run)


def test_latency_is_measured_by_the_harness_not_taken_from_the_reply(engine: Engine, question_sets) -> None:
    run = run_evaluation(UnderstatesItsLatency(engine), [subset(question_sets, "core", "foot-width")])
    (result,) = run.results
    assert result.answer is not None and result.answer.timings_ms == {"total": 0.1}
    assert result.metrics.latency_ms >= 60


def test_the_healthy_engine_passes_the_same_cases(engine: Engine, question_sets) -> None:
    # Cases the engine ranks first: "lock-out-top" is a real hit@1 miss (an intro passage wins on BM25 since
    # the tantivy fusion), which drags a two-case subset under the core minimum; the full set still passes.
    run = run_evaluation(engine, [subset(question_sets, "core", "foot-width", "fully-straighten-legs"),
                                  subset(question_sets, "adversarial", "markup-script")])  # fmt: skip
    # Two core cases are too few for the per-set retrieval minimums; the floors apply to any run.
    floors = [m for m in misses(run) if m.split()[1] in {"disclaimer", "crash_free", "citation_validity",
                                                           "escalation_rate", "no_forbidden_text"}]  # fmt: skip
    assert failures(run) == {} and floors == []


def test_a_conversation_feeds_the_bots_real_replies_back_as_history(engine: Engine, question_sets) -> None:
    (case,) = subset(question_sets, "conversations", "conv-lock-then-why").cases
    result = run_case(engine, case, set_name="conversations", disclaimer=DISCLAIMER)
    first_reply = engine.ask("Is it ok to lock my knees at the top?").answer
    assert result.history == [
        {"role": "user", "content": "Is it ok to lock my knees at the top?"},
        {"role": "assistant", "content": first_reply},
    ]
    assert result.answer is not None and result.answer.question == "why not?" and result.passed


def test_tags_select_cases_across_sets(question_sets) -> None:
    chosen = select_cases(question_sets, ["locking"])
    assert chosen and all("locking" in c.tags for _, c in chosen)
    assert {s.name for s, _ in chosen} >= {"core", "adversarial", "conversations"}
    assert len(select_cases(question_sets, None)) == sum(len(s.cases) for s in question_sets)
