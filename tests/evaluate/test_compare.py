"""``--compare``: metric deltas, flipped cases, and the answer-by-answer diff, on tiny hand-made report folders."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.evaluate.answer_diff import diff_answers, read_results, visible
from bot.evaluate.compare import EarlierRunError, compare_runs, comparison_lines, read_earlier_run
from bot.evaluate.metrics import GroupSummary

FEET = "Position your feet about shoulder-width apart on the platform."
LOCK = "Do not lock your knees at the top."
DISCLAIMER = "*Not medical advice; see a doctor.*"


def citation(n: int = 1, quote: str = FEET, **fields: Any) -> dict[str, Any]:
    return {"n": n, "chunk_id": f"chunk-{n}", "doc_id": "doc", "title": "Knee pain", "section": "Feet",
            "text": f"Intro. {quote} Outro.", "quote": quote, "start": 7, "end": 7 + len(quote), **fields}  # fmt: skip


def answer(text: str = f"{FEET} [1]", *, status: str = "answered", citations: list | None = None) -> dict[str, Any]:
    return {"question": "q", "status": status, "answer": f"{text}\n\n---\n{DISCLAIMER}", "disclaimer": DISCLAIMER,
            "citations": [citation()] if citations is None else citations, "timings_ms": {"total": 20.0},
            "passages": [{"chunk_id": "chunk-1", "text": FEET, "score": 0.9}]}  # fmt: skip


def record(name: str, reply: dict[str, Any] | None = None, *, passed: bool = True, **extra: Any) -> dict[str, Any]:
    set_name, case_id = name.split("/")
    return {"set": set_name, "id": case_id, "passed": passed, "failures": [], "answer": reply or answer(),
            "metrics": {"latency_ms": 20.0}, **extra}  # fmt: skip


def report_folder(tmp_path: Path, records: list[dict[str, Any]], metrics: dict[str, float] | None = None) -> Path:
    """A folder like the one ``python -m bot eval`` writes, with just what ``--compare`` reads."""
    folder = tmp_path / "earlier"
    folder.mkdir()
    summary = {"sets": {"core": {"metrics": metrics or {}}}}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]  # as reports.write_results_jsonl does
    (folder / "results.jsonl").write_text("".join(lines), encoding="utf-8")
    return folder


def summary(**metrics: float | None) -> GroupSummary:
    return GroupSummary(cases=1, passed=1, crashes=0, metrics=dict(metrics), measured={}, latency_ms={})


def changed_copy(source: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """``source`` with the value at ``path`` (keys and indexes into the record) replaced."""
    result = copy.deepcopy(source)
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return result


# -- metric deltas and flips (what --compare showed before the answer diff) ---------------------------


def test_compare_reports_metric_deltas_and_flipped_cases(tmp_path: Path) -> None:
    old = report_folder(tmp_path, [record("core/a"), record("core/b", passed=False), record("core/c")],
                        {"hit@1": 0.9, "hit@3": 1.0})  # fmt: skip
    now = [record("core/a", passed=False), record("core/b"), record("core/c"), record("core/new", passed=False)]
    comparison = compare_runs(read_earlier_run(old), {"core": summary(**{"hit@1": 0.85, "hit@3": 1.0})}, now)
    assert [(d.metric, d.old, d.new, d.change) for d in comparison.changed] == [("hit@1", 0.9, 0.85, -0.05)]
    assert comparison.now_failing == ("core/a",) and comparison.now_passing == ("core/b",)


@pytest.mark.parametrize(
    "files",
    [
        {},  # an empty folder
        {"summary.json": "{}", "results.jsonl": "not json\n"},
        {"summary.json": "{}", "results.jsonl": '{"set": "core"}\n'},  # no id, no verdict
        {"summary.json": "{", "results.jsonl": ""},
    ],
)
def test_a_folder_that_is_not_a_report_is_named(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(EarlierRunError, match="not a readable eval report folder") as error:
        read_earlier_run(tmp_path)
    assert str(tmp_path) in str(error.value)


# -- the answer-by-answer diff ------------------------------------------------------------------------


def test_the_same_replies_are_identical_and_counted_so(tmp_path: Path) -> None:
    records = [record("core/a"), record("core/b", answer(LOCK, citations=[])), record("safety/c", passed=False)]
    comparison = compare_runs(read_earlier_run(report_folder(tmp_path, records)), {}, copy.deepcopy(records))
    assert comparison.answers.identical == ("core/a", "core/b", "safety/c") and comparison.answers.unchanged
    assert comparison_lines(comparison)[-1] == "  answers: 3 identical, 0 changed, 0 only here, 0 only there"
    assert comparison.answers.lines() == []


@pytest.mark.parametrize(
    ("path", "value", "what"),
    [
        (("answer", "status"), "not_found", "status (answered → not_found)"),
        (("answer", "answer"), f"{FEET} [1]\n\n---\n{DISCLAIMER} ", "text"),  # one trailing space
        (("answer", "citations", 0, "n"), 2, "citations"),
        (("answer", "citations", 0, "chunk_id"), "chunk-9", "citations"),
        (("answer", "citations", 0, "quote"), FEET[:-1], "citations"),
        (("answer", "citations", 0, "start"), 8, "citations"),
        (("answer", "citations", 0, "end"), 99, "citations"),
        (("answer", "citations"), [], "citations"),  # the reply no longer cites anything
        (("answer", "citations"), [citation(), citation(2, LOCK)], "citations"),  # one more
    ],
)
def test_any_difference_in_status_text_or_a_citation_field_is_a_change(path, value, what) -> None:
    before = record("core/a")
    (change,) = diff_answers([before], [changed_copy(before, path, value)]).changed
    assert change.name == "core/a" and change.what() == what


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("answer", "timings_ms"), {"total": 99.0}),  # speed is not the answer
        (("answer", "passages", 0, "score"), 0.1),  # nor what was retrieved, nor how it scored
        (("answer", "citations", 0, "title"), "Renamed"),  # follows from chunk_id
        (("metrics", "latency_ms"), 99.0),
        (("passed",), False),  # a verdict is a flip (shown above), not an answer
    ],
)
def test_what_is_not_the_answer_does_not_count_as_a_change(path, value) -> None:
    before = record("core/a")
    assert diff_answers([before], [changed_copy(before, path, value)]).identical == ("core/a",)


def test_a_changed_reply_is_shown_as_a_unified_diff_of_status_text_and_citations() -> None:
    before = record("core/a")
    after = record("core/a", answer(f"{LOCK} [1]", citations=[citation(1, LOCK)]))
    (change,) = diff_answers([before], [after]).changed
    assert change.what() == "text, citations"
    assert change.diff("/runs/old") == [
        "--- core/a (/runs/old)",
        "+++ core/a (this run)",
        "@@ -1,8 +1,8 @@",
        " status: answered",
        " reply:",
        f"-  {FEET} [1]",
        f"+  {LOCK} [1]",
        " ",
        "   ---",
        f"   {DISCLAIMER}",
        " citations:",
        f'-  [1] chunk chunk-1 at 7-{7 + len(FEET)}: "{FEET}"',
        f'+  [1] chunk chunk-1 at 7-{7 + len(LOCK)}: "{LOCK}"',
    ]


def test_a_status_change_alone_shows_in_the_diff() -> None:
    before = record("core/a", answer(status="answered"))
    after = record("core/a", answer(status="escalated"))
    (change,) = diff_answers([before], [after]).changed
    assert [line for line in change.diff() if line[:1] in "+-" and line[:3] not in ("---", "+++")] == [
        "-status: answered",
        "+status: escalated",
    ]


def test_a_crash_is_a_change_of_status_showing_the_error() -> None:
    crashed = record("core/a", passed=False) | {"answer": None, "metrics": {"error": "RuntimeError: boom"}}
    (change,) = diff_answers([record("core/a")], [crashed]).changed
    assert change.what() == "status (answered → crashed), text, citations"
    assert "+  (no reply: RuntimeError: boom)" in change.diff()


def test_cases_are_matched_by_set_and_id_in_any_order() -> None:
    earlier = [record("core/a"), record("core/b"), record("core/gone"), record("safety/a")]
    current = [record("safety/a"), record("core/new"), record("core/b"), record("holdout/a"), record("core/a")]
    answers = diff_answers(earlier, current)
    assert answers.identical == ("safety/a", "core/b", "core/a")  # in this run's order
    assert answers.only_here == ("core/new", "holdout/a") and answers.only_there == ("core/gone",)
    assert answers.count_line() == "answers: 3 identical, 0 changed, 2 only here, 1 only there"
    assert not answers.unchanged
    assert answers.to_dict() == {
        "identical": 3, "changed": 0, "only_here": 2, "only_there": 1,
        "changed_ids": [], "only_here_ids": ["core/new", "holdout/a"], "only_there_ids": ["core/gone"],
    }  # fmt: skip


def test_a_line_separator_inside_a_reply_does_not_split_its_record(tmp_path: Path) -> None:
    odd = record("core/a", answer(f"{FEET}\u2028second line\u2029third [1]"))
    folder = report_folder(tmp_path, [odd, record("core/b")])
    text = (folder / "results.jsonl").read_text(encoding="utf-8")
    assert len(text.splitlines()) == 4  # what str.splitlines() would have read: two broken records
    assert read_results(folder / "results.jsonl") == [odd, record("core/b")]
    assert read_earlier_run(folder).outcomes == {"core/a": True, "core/b": True}


def test_characters_that_look_alike_are_made_visible_in_the_diff() -> None:
    before = record("core/a", answer("Feet apart.\nSecond line."))
    after = record("core/a", answer("Feet\u00a0apart.\u2028Second line.\t  "))
    (change,) = diff_answers([before], [after]).changed
    assert "+  Feet\\u00a0apart.\\u2028Second line.\\t␠␠" in change.diff()
    assert visible("tab\there\r") == "tab\\there\\r" and visible("ok  ") == "ok␠␠"


def test_the_console_lines_show_the_first_changes_and_count_the_rest() -> None:
    earlier = [record(f"core/c{i}") for i in range(5)]
    current = [record(f"core/c{i}", answer(f"{LOCK} {i} [1]")) for i in range(5)]
    lines = diff_answers(earlier, current).lines("/runs/old", limit=3)
    assert [line for line in lines if not line.startswith("    ")] == [
        "  core/c0: text changed",
        "  core/c1: text changed",
        "  core/c2: text changed",
        "  … and 2 more changed answers (report.md and report.html show every diff)",
    ]
    assert f"    +  {LOCK} 2 [1]" in lines and "    --- core/c0 (/runs/old)" in lines
