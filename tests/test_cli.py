import json
import os
import subprocess
import sys

import pytest

from bot.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run(args: list[str], settings: Settings, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOT_INDEX_DIR": str(settings.index_dir), "BOT_CORPUS_DIR": str(settings.corpus_dir)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=180,
        check=False,
    )


def test_ask_prints_the_answer_its_sources_and_the_disclaimer(index_settings: Settings, engine) -> None:
    result = run(["ask", "Where should my feet go?"], index_settings)
    assert result.returncode == 0, result.stderr
    assert (
        "shoulder-width" in result.stdout
        and "Sources:" in result.stdout
        and "[1] Knee Pain After Leg Press" in result.stdout
    )
    assert result.stdout.rstrip().endswith("see a doctor or physical therapist.")


def test_ask_json_prints_the_contract(index_settings: Settings, engine) -> None:
    result = run(["ask", "--json", "How often should I leg press?"], index_settings)
    answer = json.loads(result.stdout)
    assert answer["status"] == "answered" and answer["citations"]


def test_json_lines_from_stdin_get_one_answer_each_and_bad_lines_lose_nothing(index_settings: Settings, engine) -> None:
    lines = [
        json.dumps({"question": "Is it bad to lock out?"}),
        "this is not json",
        json.dumps({"question": "why?", "history": [{"role": "user", "content": "Is it bad to lock out?"}]}),
    ]
    result = run(["ask", "--json", "-"], index_settings, stdin="\n".join(lines) + "\n")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["status"] for a in answers] == ["answered", "invalid", "answered"]
    assert all(a["answer"].endswith(a["disclaimer"]) for a in answers)


def test_json_lines_stay_one_line_each_whatever_the_questions_hold(index_settings: Settings, engine) -> None:
    lines = [
        '{"question": "Why do my knees hurt\u2028after leg day?"}',  # a line separator, raw inside the JSON
        '{"question": "Why\u2029do my knees hurt?"}',
        '{"question": "knee \\ud800 pain"}',  # a lone surrogate: unreadable text, an invalid answer
    ]
    result = run(["ask", "--json", "-"], index_settings, stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    assert "\u2028" not in result.stdout and "\u2029" not in result.stdout  # escaped, so splitlines is safe
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 3 and answers[0]["question"] == "Why do my knees hurt\u2028after leg day?"
    assert (answers[2]["status"], answers[2]["reason"]) == ("invalid", "unreadable")
    assert all(a["answer"].endswith(a["disclaimer"]) for a in answers)


def test_a_bad_setting_is_one_line_and_exit_status_2(index_settings: Settings) -> None:
    env = {**os.environ, "BOT_RATE_LIMIT": "0"}
    result = subprocess.run([sys.executable, "-m", "bot", "feedback", "export", "-o", "-"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("BOT_RATE_LIMIT='0': ") and "'off'" in result.stderr


def test_ask_on_a_fresh_clone_builds_the_missing_index(tmp_path, index_settings: Settings) -> None:
    fresh = Settings(corpus_dir=index_settings.corpus_dir, index_dir=tmp_path / "index")
    result = run(["ask", "Do knee sleeves help?"], fresh)
    assert result.returncode == 0 and "knee sleeves" in result.stdout.lower()
    assert "Building the index (there is no index yet)" in result.stderr
    assert (tmp_path / "index" / "manifest.json").exists()


def test_index_reports_what_it_did(index_settings: Settings, engine) -> None:
    result = run(["index"], index_settings)
    assert result.returncode == 0 and "0 texts embedded" in result.stdout


def test_a_missing_corpus_is_a_clear_error_not_a_traceback(tmp_path) -> None:
    result = run(["ask", "hi"], Settings(corpus_dir=tmp_path / "nowhere", index_dir=tmp_path / "index"))
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr
