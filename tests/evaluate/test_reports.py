from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from bot.contract import Answer
from bot.engine.engine import Engine
from bot.evaluate.compare import compare_runs, read_earlier_run
from bot.evaluate.gate import THRESHOLDS_FILE, check_gate, load_thresholds
from bot.evaluate.reports import REPORT_FILES, markdown_table, summary_rows, text_table, write_reports
from bot.evaluate.runner import EvaluationRun, run_evaluation

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def reports(evaluation: EvaluationRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    gate = check_gate(evaluation.set_summaries(), load_thresholds(THRESHOLDS_FILE))
    write_reports(evaluation, gate, out)
    return out


def test_a_run_writes_the_five_report_files(reports: Path) -> None:
    assert sorted(p.name for p in reports.iterdir()) == sorted(REPORT_FILES)


def test_results_hold_one_record_per_case_with_the_full_reply(reports: Path, evaluation: EvaluationRun) -> None:
    records = [json.loads(line) for line in (reports / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(evaluation.results)
    first = records[0]
    assert set(first) >= {"set", "id", "case", "answer", "metrics", "passed", "failures"}
    assert set(first["answer"]) >= set(Answer.model_fields)
    assert {"hit_at_3", "key_coverage", "citations_valid", "disclaimer_present", "latency_ms"} <= set(first["metrics"])


def test_the_summary_has_sets_tags_and_the_gate(reports: Path) -> None:
    summary = json.loads((reports / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["sets"]) == {"core", "safety", "adversarial", "conversations", "holdout", "members", "all"}
    assert "red-flag" in summary["tags"] and summary["gate"]["passed"] is True
    assert summary["sets"]["core"]["metrics"]["hit@3"] >= 0.95


def test_junit_has_one_testcase_per_case_named_set_slash_id(reports: Path, evaluation: EvaluationRun) -> None:
    root = ET.parse(reports / "junit.xml").getroot()
    names = [tc.get("name") for suite in root if suite.get("name") != "gate" for tc in suite]
    assert names == [r.name for r in evaluation.results]
    failed = {tc.get("name") for tc in root.iter("testcase") if tc.find("failure") is not None}
    assert {r.name for r in evaluation.failed} <= failed


def test_the_html_report_is_self_contained_with_its_plots(reports: Path) -> None:
    html = (reports / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 3
    assert not re.search(r"""<(script|link|img|iframe)\b|(src|href)=["']?https?:""", html)


def test_markup_in_questions_is_escaped_in_the_html(reports: Path) -> None:
    html = (reports / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html and "<img src=x" not in html


def test_the_markdown_report_lists_the_gate_and_every_set(reports: Path) -> None:
    markdown = (reports / "report.md").read_text(encoding="utf-8")
    assert "## Gate" in markdown and "Gate passed" in markdown
    assert all(f"| {name} |" in markdown for name in ("core", "safety", "adversarial", "conversations", "holdout"))


def test_a_failing_case_shows_in_junit_with_its_reason(engine: Engine, question_sets, tmp_path: Path) -> None:
    class DropsTheDisclaimer:
        def ask(self, question, history=None):
            answer = engine.ask(question, history)
            return answer.model_copy(update={"answer": answer.answer.removesuffix(answer.disclaimer)})

    core = next(s for s in question_sets if s.name == "core")
    run = run_evaluation(DropsTheDisclaimer(), [replace(core, cases=core.cases[:1])])
    write_reports(run, check_gate(run.set_summaries(), load_thresholds(THRESHOLDS_FILE)), tmp_path)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    failure = next(tc for tc in root.iter("testcase") if tc.get("name") == "core/muscles-worked").find("failure")
    assert failure is not None and failure.get("message") == "the disclaimer is missing from the end of the reply"
    gate = next(tc for tc in root.iter("testcase") if tc.get("name") == "gate/core/disclaimer")
    assert gate.find("failure") is not None


def test_compare_against_the_same_run_changes_nothing(reports: Path, evaluation: EvaluationRun) -> None:
    records = [r.to_record() for r in evaluation.results]
    comparison = compare_runs(read_earlier_run(reports), evaluation.set_summaries(), records)
    assert comparison.changed == [] and comparison.now_failing == ()
    # Every reply read back from results.jsonl is the one the run holds, to the character.
    assert comparison.answers.unchanged and len(comparison.answers.identical) == len(evaluation.results)


def test_tables_align_and_escape() -> None:
    header, rows = ["set", "n"], [["a|b", "1"], ["long name", "22"]]
    assert text_table(header, rows).splitlines()[2] == "a|b         1"
    assert "a\\|b" in markdown_table(header, rows)


def test_summary_rows_show_a_dash_for_unmeasured_metrics(evaluation: EvaluationRun) -> None:
    _, rows = summary_rows(evaluation.set_summaries())
    safety = next(r for r in rows if r[0] == "safety")
    assert safety[3] == "–"  # hit@1: safety has no gold spans
