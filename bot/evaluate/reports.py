"""The five report files of a run: results.jsonl, summary.json, report.md, report.html and junit.xml."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bot.evaluate.compare import Comparison, comparison_lines
from bot.evaluate.gate import GateResult
from bot.evaluate.loader import EVAL_DIR
from bot.evaluate.metrics import GroupSummary
from bot.evaluate.provenance import header_lines, junit_properties
from bot.evaluate.runner import ALL, CaseResult, EvaluationRun
from bot.settings import PROJECT_ROOT, Settings

REPORTS_DIR = EVAL_DIR / "reports"
REPORT_FILES = ("results.jsonl", "summary.json", "report.md", "report.html", "junit.xml")
#: Columns of the summary table: (heading, metric); latency columns are added after them.
TABLE_COLUMNS = (
    ("hit@1", "hit@1"),
    ("hit@3", "hit@3"),
    ("mrr@5", "mrr@5"),
    ("keys", "key_coverage"),
    ("lead", "lead"),
    ("padding", "padding"),
    ("cite ok", "citation_validity"),
    ("cite hit", "citation_hit"),
    ("status", "status_accuracy"),
    ("discl.", "disclaimer"),
    ("no crash", "crash_free"),
)


def default_out_dir(now: datetime | None = None) -> Path:
    """``eval/reports/<UTC timestamp>/``."""
    return REPORTS_DIR / (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def run_info(settings: Settings, *, engine_settings: bool = True) -> dict[str, Any]:
    """What a reader needs to reproduce the run: commit, engine settings (not for a server's run), machine."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()  # fmt: skip
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT_ROOT, capture_output=True,
                                    text=True, timeout=5, check=True).stdout.strip())  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", False
    engine = {"embedding_model": settings.embedding_model, "top_k": settings.top_k,
              "chunk_max_chars": settings.chunk_max_chars}  # fmt: skip
    return {
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "corpus_dir": str(settings.corpus_dir),
        **(engine if engine_settings else {}),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def _format(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def summary_rows(summaries: Mapping[str, GroupSummary]) -> tuple[list[str], list[list[str]]]:
    """The summary table as a header and rows of text (``–``: the set has no case for that metric)."""
    header = ["set", "cases", "passed", *(h for h, _ in TABLE_COLUMNS), "p50 ms", "p95 ms", "engine p50"]
    rows = [
        [
            scope,
            str(s.cases),
            str(s.passed),
            *(_format(s.metrics.get(metric)) for _, metric in TABLE_COLUMNS),
            _ms(s.latency_ms["p50"]),
            _ms(s.latency_ms["p95"]),
            _ms(s.latency_ms.get("server_p50")),
        ]
        for scope, s in summaries.items()
    ]
    return header, rows


def composer_rows(by_composer: Mapping[str, Mapping[str, GroupSummary]]) -> tuple[list[str], list[list[str]]]:
    """Composers side by side, per set: grounding, citations, key facts, the guard's work and speed."""
    header = ["composer", "set", "grounded", "cite ok", "keys", "removed", "fell back", "1st text p50", "p50 ms"]
    rows = [
        [
            composer,
            scope,
            _format(s.metrics.get("groundedness")),
            _format(s.metrics.get("citation_validity")),
            _format(s.metrics.get("key_coverage")),
            str(s.removed_sentences),
            _format(s.metrics.get("fallback_rate")),
            _ms(s.latency_ms.get("first_text_p50")),
            _ms(s.latency_ms["p50"]),
        ]
        for composer, summaries in by_composer.items()
        for scope, s in summaries.items()
    ]
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns (first column left, the rest right)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table; pipes and newlines in cells are escaped."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def gate_lines(gate: GateResult) -> list[str]:
    """The gate verdict and every missed minimum."""
    if gate.passed:
        lines = [f"Gate passed: all {len(gate.checks) - len(gate.unmeasured)} measured minimums met."]
    else:
        lines = [f"Gate FAILED: {len(gate.misses)} of {len(gate.checks)} minimums missed:"]
        lines += [f"  {check.describe()}" for check in gate.misses]
    lines += [f"  {check.describe()}" for check in gate.unmeasured]
    return lines


# -- the files ---------------------------------------------------------------------------------------


def write_results_jsonl(run: EvaluationRun, path: Path) -> None:
    """One JSON record per case: the case, the full ``ask`` JSON, every metric, pass/fail and why."""
    with path.open("w", encoding="utf-8") as out:
        for result in run.results:
            out.write(json.dumps(result.to_record(), ensure_ascii=False) + "\n")


def summary_data(run: EvaluationRun, gate: GateResult, comparison: Comparison | None) -> dict[str, Any]:
    """Everything of ``summary.json``."""
    return {
        "started_at": run.started_at.isoformat(timespec="seconds"),
        "seconds": run.seconds,
        "info": run.info,
        "sets": {scope: s.to_dict() for scope, s in run.set_summaries().items()},
        "tags": {tag: s.to_dict() for tag, s in run.tag_summaries().items()},
        "gate": gate.to_dict(),
        "failing_cases": [{"case": r.name, "failures": r.failures} for r in run.failed],
        "comparison": comparison.to_dict() if comparison else None,
    }


def render_markdown(run: EvaluationRun, gate: GateResult, comparison: Comparison | None) -> str:
    """``report.md``: the gate, the per-set table, failing cases, the per-tag table."""
    header, rows = summary_rows(run.set_summaries())
    tag_header, tag_rows = summary_rows(run.tag_summaries())
    tag_header[0] = "tag"
    parts = [
        "# Evaluation report",
        f"Run {run.started_at:%Y-%m-%d %H:%M:%S} UTC, {len(run.results)} cases in {run.seconds:.1f} s, "
        f"commit `{run.info.get('commit', 'unknown')}`.",
        "\n".join(f"- {line}" for line in header_lines(run)),
        "## Gate",
        "\n".join(f"- {line.strip()}" if i else line for i, line in enumerate(gate_lines(gate))),
        "## Per set",
        markdown_table(header, rows),
    ]
    if comparison is not None:
        parts += ["## Comparison", "```\n" + "\n".join(comparison_lines(comparison)) + "\n```"]
        parts += _markdown_answer_changes(comparison)
    parts.append(f"## Failing cases ({len(run.failed)})")
    parts.append("\n".join(_markdown_failure(r) for r in run.failed) or "None.")
    parts += ["## Per tag", markdown_table(tag_header, tag_rows)]
    return "\n\n".join(parts) + "\n"


def _markdown_answer_changes(comparison: Comparison) -> list[str]:
    """Every changed answer as a diff block, and the cases only one of the runs has."""
    answers, parts = comparison.answers, []
    for label, names in (("Only in this run", answers.only_here), ("Only in the earlier run", answers.only_there)):
        if names:
            parts.append(f"{label} ({len(names)}): " + ", ".join(f"`{name}`" for name in names))
    if answers.changed:
        parts.append(f"### Changed answers ({len(answers.changed)})")
    for change in answers.changed:
        diff = "\n".join(change.diff(str(comparison.old_dir)))
        fence = "`" * max(3, max((len(run) for run in re.findall("`+", diff)), default=0) + 1)  # longer than any inside
        parts.append(f"`{change.name}`: {change.what()} changed\n\n{fence}diff\n{diff}\n{fence}")
    return parts


def _markdown_failure(result: CaseResult) -> str:
    question = " ".join(result.case.scored_question.split())
    lines = [f"- **{result.name}** — {question[:200]!r}"]
    lines += [f"  - {reason}" for reason in result.failures]
    return "\n".join(lines)


def write_junit_xml(run: EvaluationRun, gate: GateResult, path: Path) -> None:
    """``junit.xml``: a suite per set with one testcase per case (``set/id``), and a suite for the gate."""
    root = ET.Element("testsuites", name="eval", tests=str(len(run.results)),
                      failures=str(len(run.failed)), time=f"{run.seconds:.3f}")  # fmt: skip
    properties = junit_properties(run.info)
    for question_set in run.sets:
        results = [r for r in run.results if r.set_name == question_set.name]
        crashed = [r for r in results if r.metrics.crashed]
        suite = ET.SubElement(
            root, "testsuite", name=question_set.name, tests=str(len(results)),
            failures=str(sum(not r.passed for r in results) - len(crashed)), errors=str(len(crashed)),
            time=f"{sum(r.metrics.latency_ms for r in results) / 1000:.3f}",
            timestamp=run.started_at.isoformat(timespec="seconds"),
        )  # fmt: skip
        if properties:
            listed = ET.SubElement(suite, "properties")
            for name, value in properties:
                ET.SubElement(listed, "property", name=name, value=value)
        for result in results:
            case = ET.SubElement(suite, "testcase", classname=f"eval.{question_set.name}", name=result.name,
                                 time=f"{result.metrics.latency_ms / 1000:.3f}")  # fmt: skip
            if result.passed:
                continue
            tag = "error" if result.metrics.crashed else "failure"
            detail = ET.SubElement(case, tag, message="; ".join(result.failures), type="EvalCaseFailure")
            reply = result.answer.answer if result.answer is not None else "(no reply)"
            detail.text = "\n".join(
                [*result.failures, "", f"question: {result.case.scored_question}", f"reply: {reply}"]
            )
    suite = ET.SubElement(root, "testsuite", name="gate", tests=str(len(gate.checks)), failures=str(len(gate.misses)))
    for check in gate.checks:
        case = ET.SubElement(suite, "testcase", classname="eval.gate", name=f"gate/{check.scope}/{check.metric}")
        if check.passed is False:
            ET.SubElement(case, "failure", message=check.describe(), type="EvalThresholdMissed")
        elif check.passed is None:
            ET.SubElement(case, "skipped", message=check.describe())
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _case_view(result: CaseResult) -> dict[str, Any]:
    """What the HTML shows for one case (plain strings: the template escapes them)."""
    answer = result.answer
    gold = result.case.gold_spans
    citations = []
    for c in answer.citations if answer else []:
        at = c.text.find(c.quote) if c.quote else -1
        pre, quote, post = (c.text[:at], c.quote, c.text[at + len(c.quote) :]) if at >= 0 else (c.text, "", "")
        citations.append({"n": c.n, "where": f"{c.title} › {c.section}", "pre": pre, "quote": quote, "post": post,
                          "quote_found": at >= 0})  # fmt: skip
    passages = [
        {"rank": i, "section": p.section, "score": p.score, "text": p.text, "gold": any(g in p.text for g in gold)}
        for i, p in enumerate(answer.passages if answer else [], start=1)
    ]
    return {
        "name": result.name,
        "id": result.case.id,
        "passed": result.passed,
        "failures": result.failures,
        "question": result.case.scored_question,
        "history": result.history,
        "expect": result.case.expect,
        "status": result.metrics.status or "crashed",
        "tags": result.case.tags,
        "notes": result.case.notes,
        "answer": answer.answer if answer else result.metrics.error,
        "citations": citations,
        "passages": passages,
        "gold_rank": result.metrics.gold_rank,
        "key_coverage": result.metrics.key_coverage,
        "latency_ms": result.metrics.latency_ms,
        "server_ms": result.metrics.server_ms,
    }


def _comparison_view(comparison: Comparison) -> dict[str, Any]:
    """The comparison for the HTML: its lines, the cases in one run only, and each changed answer's diff.

    Each diff line comes with its kind (file, hunk, add, del, context) for its colour.
    """
    changes = []
    for change in comparison.answers.changed:
        lines = change.diff(str(comparison.old_dir))
        kinds = ["file" if i < 2 and line.startswith(("--- ", "+++ ")) else "hunk" if line.startswith("@@ ")
                 else {"+": "add", "-": "del"}.get(line[:1], "context") for i, line in enumerate(lines)]  # fmt: skip
        changes.append({"name": change.name, "what": change.what(), "lines": list(zip(kinds, lines, strict=True))})
    one_run = [("Only in this run", comparison.answers.only_here),
               ("Only in the earlier run", comparison.answers.only_there)]  # fmt: skip
    return {"lines": comparison_lines(comparison), "one_run": one_run, "changes": changes}


def render_html(run: EvaluationRun, gate: GateResult, comparison: Comparison | None) -> str:
    """``report.html``: one self-contained page (inline CSS and SVG plots, nothing fetched)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
    from markupsafe import Markup

    from bot.evaluate import plots

    environment = Environment(
        loader=PackageLoader("bot.evaluate", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
    )
    summaries = run.set_summaries()
    tags = run.tag_summaries()
    header, rows = summary_rows(summaries)
    tag_header, tag_rows = summary_rows(tags)
    latencies = {s.name: [r.metrics.latency_ms for r in run.results if r.set_name == s.name and not r.metrics.crashed]
                 for s in run.sets}  # fmt: skip
    return environment.get_template("report.html.j2").render(
        run=run,
        gate=gate,
        gate_lines=gate_lines(gate),
        header_lines=header_lines(run),
        comparison=_comparison_view(comparison) if comparison else None,
        header=header,
        rows=rows,
        all_scope=ALL,
        tag_header=["tag", *tag_header[1:]],
        tag_rows=tag_rows,
        sets=[(s, [_case_view(r) for r in run.results if r.set_name == s.name]) for s in run.sets],
        failing=[_case_view(r) for r in run.failed],
        # The SVGs come from matplotlib, not from any answer or question: safe to inline unescaped.
        plot_sets=Markup(plots.metrics_per_set(summaries)),
        plot_tags=Markup(plots.pass_rate_per_tag(tags)),
        plot_latency=Markup(plots.latency_distribution(latencies)),
    )


def write_reports(
    run: EvaluationRun, gate: GateResult, out_dir: Path, comparison: Comparison | None = None
) -> list[Path]:
    """Write the five report files into ``out_dir`` (created if needed) and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in REPORT_FILES]
    results, summary, markdown, html, junit = paths
    write_results_jsonl(run, results)
    summary.write_text(json.dumps(summary_data(run, gate, comparison), indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")  # fmt: skip
    markdown.write_text(render_markdown(run, gate, comparison), encoding="utf-8")
    html.write_text(render_html(run, gate, comparison), encoding="utf-8")
    write_junit_xml(run, gate, junit)
    return paths
