"""``python -m bot eval --url`` against the real server on loopback: the deployment answers exactly like the build.

The real app (``python app.py``, its own index built from the same corpus) answers every case of every set
through the streaming route; ``--compare`` with the session's in-process run must find every answer
identical, the gate's verdict and every check's value the same, and JUnit written. With the server's rate
limit far below the suite's pace, the suite waits on ``Retry-After`` and still completes, no case failing
because of the limit; with a QA key (``BOT_QA_KEYS``) it never waits at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.evaluate.gate import THRESHOLDS_FILE, GateResult, check_gate, load_thresholds
from bot.evaluate.reports import write_reports
from bot.evaluate.runner import EvaluationRun
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import ThreadedServer, free_port
from tests.processes import AppProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QA_KEY = "qa-suite-" + "0123456789abcdef"
#: Far below the suite's pace: 90-odd requests must wait several times.
LOW_LIMIT = "8/2 second"


@pytest.fixture(scope="module")
def in_process(evaluation: EvaluationRun, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GateResult]:
    """The session's in-process run of every set, its reports written where ``--compare`` reads them."""
    out = tmp_path_factory.mktemp("in-process")
    gate = check_gate(evaluation.set_summaries(), load_thresholds(THRESHOLDS_FILE))
    write_reports(evaluation, gate, out)
    return out, gate


def eval_cli(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bot", "eval", *args], capture_output=True, text=True,
                            cwd=PROJECT_ROOT, timeout=900, check=False,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    return result, time.perf_counter() - started


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def checks(gate: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(c["scope"], c["metric"], c["value"], c["passed"]) for c in gate["checks"]]


def test_every_answer_of_every_set_through_the_real_server_is_the_in_process_one(
    evaluation: EvaluationRun, in_process: tuple[Path, GateResult], tmp_path: Path
) -> None:
    local_dir, local_gate = in_process
    with AppProcess(tmp_path, index_dir=tmp_path / "index") as app:
        app.wait_ready(timeout=180)
        result, seconds = eval_cli("--url", app.url, "--out", str(tmp_path / "remote"), "--compare", str(local_dir))
    assert result.returncode == (0 if local_gate.passed else 1), result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    found = summary(tmp_path / "remote")
    answers = found["comparison"]["answers"]
    cases = len(evaluation.results)
    assert (answers["identical"], answers["changed"], answers["only_here"], answers["only_there"]) == (
        cases, 0, 0, 0), answers  # fmt: skip
    assert f"answers: {cases} identical, 0 changed, 0 only here, 0 only there" in result.stdout
    assert found["gate"]["passed"] == local_gate.passed and checks(found["gate"]) == checks(local_gate.to_dict())
    comparison = found["comparison"]
    assert [d for d in comparison["deltas"] if d["change"]] == [] and "no metric changed" in result.stdout
    assert (comparison["now_failing"], comparison["now_passing"]) == ([], [])
    server = found["info"]["server"]
    assert server["route"] == "POST /api/chat/stream" and server["health"]["status"] == "ready"
    assert server["waits"]["count"] == 0 and server["version_warning"] is None
    junit = ET.parse(tmp_path / "remote" / "junit.xml").getroot()
    named = [case.get("name") for case in junit.iter("testcase") if not str(case.get("name")).startswith("gate/")]
    assert len(named) == cases and {p.get("name") for p in junit.iter("property")} >= {"server.url", "server.version"}
    print(f"\n{cases} answers identical; in process {evaluation.seconds:.1f} s (session run), "
          f"--url {found['seconds']:.1f} s ({seconds:.1f} s with the command's start)")  # fmt: skip


@pytest.fixture(scope="module")
def limited_server(index_settings: Settings, engine, tmp_path_factory: pytest.TempPathFactory):
    """The real app over the session's engine, limited to ``LOW_LIMIT`` per client, with one QA key."""
    from bot.server.app import create_app

    settings = index_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("limited-data"),
                                                 "rate_limit": LOW_LIMIT, "daily_cap_per_origin": 0,
                                                 "qa_keys": [SecretStr(QA_KEY)]})  # fmt: skip
    with ThreadedServer(create_app(settings, engine=engine, page=False), free_port()) as server:
        yield server


def test_a_rate_limit_below_the_suites_pace_is_waited_out_and_fails_no_case(
    limited_server, evaluation: EvaluationRun, in_process: tuple[Path, GateResult], tmp_path: Path
) -> None:
    local_dir, _ = in_process
    sets = ["conversations", "safety"]
    local = {r.name: r.passed for r in evaluation.results if r.set_name in sets}
    args = [arg for name in sets for arg in ("--set", name)] + ["--compare", str(local_dir)]
    result, _ = eval_cli("--url", limited_server.url, "--out", str(tmp_path / "waited"), *args)
    assert result.returncode in {0, 1} and "Stopped" not in result.stderr, result.stdout[-3000:] + result.stderr
    found = summary(tmp_path / "waited")
    waits = found["info"]["server"]["waits"]
    assert waits["count"] >= 3 and set(waits["by_reply"]) == {"429 rate_limited"}, waits
    answers = found["comparison"]["answers"]
    assert (answers["identical"], answers["changed"]) == (len(local), 0), answers
    assert found["sets"]["all"]["crashes"] == 0
    records = [json.loads(line) for line in (tmp_path / "waited" / "results.jsonl").read_text().splitlines()]
    assert {f"{r['set']}/{r['id']}": r["passed"] for r in records} == local  # no verdict changed by the limit
    assert not any("429" in reason or "rate" in reason for r in records for reason in r["failures"])
    print(f"\n{len(local)} cases through a {LOW_LIMIT} limit: waited {waits['count']} times, "
          f"{waits['seconds']:.0f} s in all; run {found['seconds']:.1f} s")  # fmt: skip

    keyed, _ = eval_cli("--url", limited_server.url, "--out", str(tmp_path / "keyed"), "--header",
                        f"Authorization: Bearer {QA_KEY}", *args)  # fmt: skip
    assert keyed.returncode == result.returncode, keyed.stderr
    assert summary(tmp_path / "keyed")["info"]["server"]["waits"]["count"] == 0  # the QA key counts against no limit
    assert QA_KEY not in (tmp_path / "keyed" / "summary.json").read_text() + keyed.stdout + keyed.stderr
