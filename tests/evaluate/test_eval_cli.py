from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.evaluate.loader import SETS_DIR
from bot.evaluate.reports import REPORT_FILES
from bot.settings import PROJECT_ROOT, Settings


def run(args: list[str], settings: Settings | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if settings is not None:
        env |= {"BOT_INDEX_DIR": str(settings.index_dir), "BOT_CORPUS_DIR": str(settings.corpus_dir)}
    return subprocess.run([sys.executable, "-m", "bot", "eval", *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=300, check=False)  # fmt: skip


@pytest.mark.integration
@pytest.mark.slow
def test_eval_writes_reports_prints_the_table_and_fails_on_a_missed_minimum(
    index_settings: Settings, engine, tmp_path: Path
) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("sets:\n  core:\n    mrr@5: 1.0\n    refusal_rate: 0.9\n", encoding="utf-8")
    # A set whose one case can't pass: the key fact it demands is in no answer.
    doomed = tmp_path / "doomed.yaml"
    doomed.write_text(
        "name: doomed\ndescription: d\ncases:\n  - id: zebra\n    question: Where should my feet go?\n"
        "    expect: answer\n    must_include: [[zebra]]\n    tags: [locking]\n",
        encoding="utf-8",
    )
    first = run(["--set", "core", "--set", str(doomed), "--tags", "locking,foot-height", "--out", str(tmp_path / "a"),
                 "--thresholds", str(strict)], index_settings)  # fmt: skip
    assert first.returncode == 1, first.stderr
    assert "Gate FAILED: 1 of 2 minimums missed" in first.stdout and "core mrr@5 0." in first.stdout
    assert "core refusal_rate: not measured" in first.stdout
    assert first.stdout.splitlines()[0].split()[:4] == ["set", "cases", "passed", "hit@1"]
    assert "FAIL doomed/zebra: key facts missing: zebra" in first.stdout
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(REPORT_FILES)

    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("every_set:\n  disclaimer: 1.0\n", encoding="utf-8")
    second = run(["--set", "core", "--set", str(doomed), "--tags", "locking,foot-height", "--out", str(tmp_path / "b"),
                  "--thresholds", str(lenient), "--compare", str(tmp_path / "a")], index_settings)  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"Compared with {tmp_path / 'a'}:" in second.stdout and "no metric changed" in second.stdout
    assert "Gate passed" in second.stdout
    assert json.loads((tmp_path / "b" / "summary.json").read_text(encoding="utf-8"))["comparison"] is not None


def test_a_malformed_set_fails_before_loading_the_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'name: bad\ndescription: d\ncases:\n  - id: x\n    question: "hi"\n    expect: maybe\n', encoding="utf-8"
    )
    result = run(["--set", str(bad)])
    assert result.returncode == 2
    assert f"{bad}: case 'x', field 'expect'" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_set_name_lists_the_known_ones() -> None:
    result = run(["--set", "nope"])
    assert result.returncode == 2 and "core" in result.stderr


def test_eval_add_appends_a_validated_case_in_one_line(tmp_path: Path) -> None:
    path = Path(shutil.copy(SETS_DIR / "core.yaml", tmp_path / "core.yaml"))
    before = path.read_text(encoding="utf-8")
    result = run(["add", "--set", str(path), "--question", "do I lock out at the top or not??",
                  "--gold-span", "but do not lock your knees at the top",
                  "--must-include", "do not lock|without locking", "--tags", "locking,qa-report"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Added case 'do-i-lock-out-at-the'" in result.stdout
    after = path.read_text(encoding="utf-8")
    assert after.startswith(before) and "tags: [locking, qa-report]" in after


def test_eval_add_refuses_a_gold_span_that_is_not_in_the_corpus(tmp_path: Path) -> None:
    path = Path(shutil.copy(SETS_DIR / "core.yaml", tmp_path / "core.yaml"))
    before = path.read_bytes()
    result = run(["add", "--set", str(path), "--question", "is it fine?", "--gold-span", "made-up text"])
    assert result.returncode == 2 and "field 'gold_spans'" in result.stderr
    assert path.read_bytes() == before


def test_eval_add_takes_lead_and_relevant_spans(tmp_path: Path) -> None:
    path = Path(shutil.copy(SETS_DIR / "core.yaml", tmp_path / "core.yaml"))
    result = run(["add", "--set", str(path), "--question", "how often should i leg press", "--id", "how-often",
                  "--lead", "2-3 times per week", "--relevant", "2-3 times per week",
                  "--relevant", "at least 48 hours of rest"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    after = path.read_text(encoding="utf-8")
    assert '    lead:\n      - "2-3 times per week"\n' in after and '      - "at least 48 hours of rest"\n' in after
    bad = run(["add", "--set", str(path), "--question", "how often?", "--lead", "twice a week, roughly"])
    assert bad.returncode == 2 and "field 'lead'" in bad.stderr
