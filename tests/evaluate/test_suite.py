"""``python -m bot eval``'s orchestration, in process, with a fake engine: plan, run per composer, gate, reports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.cli.eval import run_lines
from bot.contract import Answer, Status
from bot.evaluate.reports import REPORT_FILES
from bot.evaluate.suite import ComposerRun, SuiteError, SuitePlan, plan_suite, run_suite
from bot.policy import DISCLAIMER
from bot.settings import PROJECT_ROOT, Settings

TINY_SET = """name: tiny
description: Two questions for the fake engine.
cases:
  - id: feet
    question: Where should my feet go?
    expect: answer
    tags: [foot-position]
  - id: lock
    question: Should I lock out?
    expect: answer
    tags: [locking]
"""


class FakeEngine:
    """Answers every question with one reply; ``with_composer`` gives a twin, or falls back like ``Engine`` does."""

    def __init__(self, composer: str = "extractive", *, reply: str = "Feet shoulder-width apart.",
                 replies: Mapping[str, str] | None = None, problem: str | None = None,
                 disclaimer: bool = True) -> None:  # fmt: skip
        self.composer, self.composer_problem = composer, problem
        self.reply, self.replies, self.disclaimer = reply, dict(replies or {}), disclaimer

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        reply = self.replies.get(question, self.reply)
        text = f"{reply}\n\n{DISCLAIMER}" if self.disclaimer else reply
        return Answer(question=question, status=Status.answered, answer=text, disclaimer=DISCLAIMER,
                      composer=self.composer)  # fmt: skip

    def with_composer(self, spec: str) -> FakeEngine:
        if spec == self.composer:
            return self
        if spec == "unknown:model":
            return FakeEngine(problem="unknown:model is not a chat model LangChain knows")
        return FakeEngine(spec, reply=self.reply, replies=self.replies, disclaimer=spec != "forgetful")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(corpus_dir=PROJECT_ROOT / "corpus", index_dir=tmp_path / "index")


@pytest.fixture
def tiny_set(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SET, encoding="utf-8")
    return path


@pytest.fixture
def thresholds(tmp_path: Path) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text("every_set:\n  disclaimer: 1.0\n", encoding="utf-8")
    return path


def plan(settings: Settings, tiny_set: Path, thresholds: Path, out: Path, **options: Any) -> SuitePlan:
    return plan_suite(settings, set_paths=[str(tiny_set)], thresholds=thresholds, out=out, **options)


def test_a_bad_set_an_unknown_tag_or_a_folder_without_a_run_is_refused_while_planning(
    settings: Settings, tiny_set: Path, thresholds: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY_SET.replace("expect: answer", "expect: maybe", 1), encoding="utf-8")
    with pytest.raises(SuiteError, match=re.escape(f"{bad}: case 'feet', field 'expect'")):
        plan_suite(settings, set_paths=[str(bad)], thresholds=thresholds)
    with pytest.raises(SuiteError, match=re.escape("No case carries any of the tags zebra, yak.")):
        plan(settings, tiny_set, thresholds, tmp_path / "out", tags=["zebra", "yak"])
    with pytest.raises(SuiteError, match=re.escape("no summary.json there")):
        plan(settings, tiny_set, thresholds, tmp_path / "out", compare=tmp_path)
    with pytest.raises(SuiteError, match="no such thresholds file"):
        plan_suite(settings, set_paths=[str(tiny_set)], thresholds=tmp_path / "none.yaml")


def test_one_composer_writes_its_reports_into_the_out_folder_and_passes_the_gate(
    settings: Settings, tiny_set: Path, thresholds: Path, tmp_path: Path
) -> None:
    engine = FakeEngine()
    result = run_suite(engine, plan(settings, tiny_set, thresholds, tmp_path / "out", tags=["locking"]))
    (run,) = result.runs
    assert result.passed and run.out_dir == tmp_path / "out" and run.composer == "extractive"
    assert [r.name for r in run.run.results] == ["tiny/lock"]  # the tag chose one case
    assert sorted(p.name for p in run.out_dir.iterdir()) == sorted(REPORT_FILES)
    assert not result.side_by_side and list(result.by_composer) == ["extractive"]


def test_each_composer_runs_every_case_into_its_own_folder_and_is_gated_on_its_own(
    settings: Settings, tiny_set: Path, thresholds: Path, tmp_path: Path
) -> None:
    warnings: list[str] = []
    finished: list[ComposerRun] = []
    composers = ["extractive", "forgetful", "unknown:model"]
    result = run_suite(FakeEngine(), plan(settings, tiny_set, thresholds, tmp_path / "out", composers=composers),
                       warn=warnings.append, on_run=finished.append)  # fmt: skip
    assert [r.spec for r in finished] == composers and list(result.runs) == finished
    assert [r.out_dir.name for r in result.runs] == ["extractive", "forgetful", "unknown-model"]
    assert [r.gate.passed for r in result.runs] == [True, False, True] and not result.passed
    assert warnings == ["unknown:model: unknown:model is not a chat model LangChain knows"]
    assert result.runs[2].composer == "extractive"  # it fell back, and says so in its run info
    summary = json.loads((tmp_path / "out" / "unknown-model" / "summary.json").read_text(encoding="utf-8"))
    assert summary["info"]["composer"] == "extractive"
    assert result.side_by_side and list(result.by_composer) == composers


def test_compare_shows_the_answer_counts_and_diffs_on_the_console_and_every_diff_in_the_reports(
    settings: Settings, thresholds: Path, tmp_path: Path
) -> None:
    five = tmp_path / "five.yaml"
    questions = [f"Question number {i}?" for i in range(5)]
    cases = "".join(f"  - id: q{i}\n    question: {q}\n    expect: answer\n" for i, q in enumerate(questions))
    five.write_text(f"name: five\ndescription: d\ncases:\n{cases}", encoding="utf-8")
    run_suite(FakeEngine(), plan_suite(settings, set_paths=[str(five)], thresholds=thresholds, out=tmp_path / "a"))
    # Four replies change; one holds markup and a Markdown fence, which the reports must keep inert.
    replies = {q: f"Keep your feet flat ({i})." for i, q in enumerate(questions[1:], start=1)}
    replies[questions[4]] = "Never ```lock``` <b>out</b>."
    (run,) = run_suite(FakeEngine(replies=replies), plan_suite(settings, set_paths=[str(five)], thresholds=thresholds,
                       out=tmp_path / "b", compare=tmp_path / "a")).runs  # fmt: skip

    console = run_lines(run, several=False)
    assert "  answers: 1 identical, 4 changed, 0 only here, 0 only there" in "\n".join(console)
    assert [line for line in console if line.endswith(": text changed")] == [
        "  five/q1: text changed", "  five/q2: text changed", "  five/q3: text changed"]  # fmt: skip
    assert "    -  Feet shoulder-width apart." in console and "    +  Keep your feet flat (1)." in console
    assert "  … and 1 more changed answer (report.md and report.html show every diff)" in console

    summary = json.loads((tmp_path / "b" / "summary.json").read_text(encoding="utf-8"))
    assert summary["comparison"]["answers"] == {
        "identical": 1, "changed": 4, "only_here": 0, "only_there": 0,
        "changed_ids": ["five/q1", "five/q2", "five/q3", "five/q4"], "only_here_ids": [], "only_there_ids": [],
    }  # fmt: skip

    markdown = (tmp_path / "b" / "report.md").read_text(encoding="utf-8")
    assert "answers: 1 identical, 4 changed, 0 only here, 0 only there" in markdown
    assert "### Changed answers (4)" in markdown and markdown.count("diff\n--- five/q") == 4
    assert f"````diff\n--- five/q4 ({tmp_path / 'a'})\n+++ five/q4 (this run)\n" in markdown  # a longer fence
    assert "+  Never ```lock``` <b>out</b>.\n" in markdown

    html = (tmp_path / "b" / "report.html").read_text(encoding="utf-8")
    assert html.count('<pre class="diff">') == 4
    assert '<span class="add">+  Never ```lock``` &lt;b&gt;out&lt;/b&gt;.</span>' in html
    assert '<span class="del">-  Feet shoulder-width apart.</span>' in html and "<b>out</b>" not in html
