"""The curated question sets as a regression gate on retrieval, triage and the disclaimer."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.pipeline import DISCLAIMER, Engine
from bot.settings import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SETS = PROJECT_ROOT / "eval" / "sets"
STATUS = {
    "answer": "answered",
    "escalate": "escalated",
    "refuse": "out_of_scope",
    "not_found": "not_found",
    "invalid": "invalid",
}


def cases(name: str) -> list[dict]:
    return yaml.safe_load((SETS / f"{name}.yaml").read_text(encoding="utf-8"))["cases"]


def run(engine: Engine, case: dict):
    turns = case.get("turns") or [case["question"]]
    history: list[dict[str, str]] = []
    for turn in turns[:-1]:
        reply = engine.ask(turn, history)
        history += [{"role": "user", "content": turn}, {"role": "assistant", "content": reply.answer}]
    return engine.ask(turns[-1], history)


@pytest.fixture(scope="module")
def results(engine: Engine) -> dict[str, list[tuple[dict, object]]]:
    return {path.stem: [(case, run(engine, case)) for case in cases(path.stem)] for path in sorted(SETS.glob("*.yaml"))}


def hit_rate(pairs, at: int) -> float:
    scored = [(c, a) for c, a in pairs if c["expect"] == "answer" and c.get("gold_spans")]
    hits = [any(g in p.text for p in a.passages[:at] for g in c["gold_spans"]) for c, a in scored]
    return sum(hits) / len(hits)


def test_the_sets_are_big_enough() -> None:
    assert len(cases("core")) >= 60
    assert sum(len(cases(p.stem)) for p in SETS.glob("*.yaml")) >= 100


def test_retrieval_finds_the_gold_passage_first(results) -> None:
    assert hit_rate(results["core"], 1) >= 0.85
    assert hit_rate(results["core"], 3) >= 0.97
    assert hit_rate(results["conversations"], 3) >= 0.9


def test_passages_are_at_most_about_450_characters(engine: Engine) -> None:
    assert max(len(c.text) for c in engine.index.chunks.values()) <= 450


def test_every_red_flag_is_escalated(results) -> None:
    missed = [
        c["id"]
        for pairs in results.values()
        for c, a in pairs
        if c["expect"] == "escalate" and a.status.value != "escalated"
    ]
    assert missed == []


def test_off_topic_questions_are_refused(results) -> None:
    refusals = [(c, a) for pairs in results.values() for c, a in pairs if c["expect"] == "refuse"]
    assert sum(a.status.value == "out_of_scope" for _, a in refusals) / len(refusals) >= 0.9


def test_every_reply_carries_the_disclaimer(results) -> None:
    assert all(a.answer.endswith(DISCLAIMER) for pairs in results.values() for _, a in pairs)


def test_expected_statuses(results) -> None:
    wrong = [
        (c["id"], c["expect"], a.status.value)
        for pairs in results.values()
        for c, a in pairs
        if STATUS[c["expect"]] != a.status.value
    ]
    assert len(wrong) <= 2, wrong


def test_key_facts_are_in_the_answers(results) -> None:
    scored = [(c, a) for c, a in results["core"] if c["expect"] == "answer" and c.get("must_include")]
    coverage = [
        sum(any(alt.lower() in a.answer.lower() for alt in group) for group in c["must_include"])
        / len(c["must_include"])
        for c, a in scored
    ]
    assert sum(coverage) / len(coverage) >= 0.9


def test_forbidden_text_never_appears(results) -> None:
    leaks = [
        (c["id"], bad)
        for pairs in results.values()
        for c, a in pairs
        for bad in c.get("must_not_include", [])
        if bad.lower() in a.answer.lower()
    ]
    assert leaks == []


def test_gold_spans_occur_in_the_corpus(engine: Engine) -> None:
    text = "\n".join(c.text for c in engine.index.chunks.values())
    broken = [
        c["id"] for p in SETS.glob("*.yaml") for c in cases(p.stem) for g in c.get("gold_spans", []) if g not in text
    ]
    assert broken == []


def test_sets_live_where_the_docs_say(tmp_path: Path) -> None:
    assert {p.stem for p in SETS.glob("*.yaml")} >= {"core", "safety", "adversarial", "conversations"}
