"""`python app.py` as a person runs it: prints its address, gets ready, stops cleanly keeping feedback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from bot.feedback import FeedbackStore
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import free_port
from tests.processes import page_when_built, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_app_serves_the_page_and_api_and_keeps_feedback_when_stopped(index_settings: Settings, engine,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    port = free_port()
    env = {**os.environ, "BOT_PORT": str(port), "BOT_INDEX_DIR": str(index_settings.index_dir),
           "BOT_CORPUS_DIR": str(index_settings.corpus_dir), "BOT_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read_stderr() -> None:
        assert server.stderr is not None
        with server.stderr as stream:  # closed at the end of the output, when the server exits
            for line in stream:
                lines.append(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            while True:
                assert server.poll() is None, "".join(lines) or "the server exited"
                assert time.monotonic() - started < 120, "not ready within 120 s"
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            ready_after = time.monotonic() - started
            print(f"start to ready: {ready_after:.2f} s")
            answer = client.post("/api/chat", json={"message": "How often should I do leg press?"}).json()
            assert page_when_built(lambda: client.get("/api/health").json(), timeout=120) == "ready"
            page = client.get("/")
            assert page.status_code == 200 and "Knee-pain coach" in page.text and "gradio" in page.text
            rated = client.post("/api/feedback", json={"rating": "down", "comment": "kept?", "answer": answer})
            assert rated.status_code == 201
            # The address is printed by a thread polling /api/health: wait for it rather than race it.
            wait_for(lambda: any(f"ready at {url}/" in line for line in lines), 30)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        reader.join(timeout=10)
    stderr = "".join(lines)
    assert server.returncode in (0, -signal.SIGTERM), stderr  # uvicorn re-raises the signal after a clean stop
    assert f"ready at {url}/" in stderr and "Traceback" not in stderr
    [row] = FeedbackStore.open(tmp_path / "data", retention_days=30).rows()
    assert (row.comment, row.question) == ("kept?", "How often should I do leg press?")


def test_the_command_line_does_not_load_the_web_stack(index_settings: Settings, engine) -> None:
    report = "print('WEB' if {'gradio', 'fastapi'} & set(sys.modules) else 'NO WEB')"
    code = ("import sys, atexit; from bot.cli.main import app; "
            "sys.argv = ['bot', 'ask', '--json', 'Do knee sleeves help?'];"
            f"atexit.register(lambda: {report}); app()")  # fmt: skip
    env = {
        **os.environ,
        "BOT_INDEX_DIR": str(index_settings.index_dir),
        "BOT_CORPUS_DIR": str(index_settings.corpus_dir),
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=180, check=False)  # fmt: skip
    assert result.stdout.rstrip().endswith("NO WEB"), result.stderr


def test_feedback_export_writes_thumbs_down_cases(tmp_path: Path) -> None:
    from tests.test_feedback import rated

    store = FeedbackStore.open(tmp_path, retention_days=30)
    store.add(rated("down", question="Why so vague?", comment="no numbers"), engine_version="v", channel="page")
    store.add(rated("up", question="Great"), engine_version="v", channel="page")
    store.close()
    env = {**os.environ, "BOT_DATA_DIR": str(tmp_path)}
    target = tmp_path / "feedback.yaml"
    result = subprocess.run([sys.executable, "-m", "bot", "feedback", "export", "-o", str(target)], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0 and "1 thumbs-down case(s)" in result.stdout, result.stderr
    import yaml

    data = yaml.safe_load(target.read_text(encoding="utf-8"))
    assert [c["question"] for c in data["cases"]] == ["Why so vague?"] and json.dumps(data)


def test_an_operators_metrics_folder_is_emptied_of_old_runs_but_never_deleted(tmp_path: Path, monkeypatch) -> None:
    import app

    folder = tmp_path / "bot-metrics-prod"  # named like the folders app.py makes for itself
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"last run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    assert app._metrics_dir() == (folder, False)
    assert list(folder.iterdir()) == []

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    own, created = app._metrics_dir()
    assert created and own.is_dir() and os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(own)
    own.rmdir()
