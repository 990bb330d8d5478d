"""Real app processes (``python app.py``) and a bounded loopback load generator, for process-level tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.servers import free_port
from bot.policy import DISCLAIMER
from bot.settings import PROJECT_ROOT


class AppProcess:
    """``python app.py`` on a free loopback port, with its standard error kept in a file.

    ``command``: what to run instead (the interpreter's arguments), e.g. ``["-m", "tests.security.serve"]``.
    """

    def __init__(self, tmp: Path, *, workers: int = 1, command: list[str] | None = None, **settings: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"app-{self.port}.log"
        self.env = {
            **os.environ,
            "BOT_HOST": "127.0.0.1",
            "BOT_PORT": str(self.port),
            "BOT_WORKERS": str(workers),
            "BOT_DATA_DIR": str(tmp / "data"),
            "BOT_RATE_LIMIT": "1000000/minute",
            "BOT_DAILY_CAP_PER_ORIGIN": "0",
            **{f"BOT_{name.upper()}": str(value) for name, value in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.command = command or ["app.py"]

    def start(self) -> AppProcess:
        self.started_at = time.monotonic()
        with self.log.open("ab") as log:
            # Its own process group, so the workers can be stopped with it whatever happens to the test.
            self.process = subprocess.Popen([sys.executable, *self.command], cwd=PROJECT_ROOT, env=self.env, stderr=log,
                                            start_new_session=True)  # fmt: skip
        return self

    def health(self) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.url}/api/health", timeout=5)
        except httpx.HTTPError:
            return None

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from start until ``/api/health`` says ready."""
        wait_for(lambda: (r := self.health()) is not None and r.status_code == 200, timeout, self.check_alive)
        return time.monotonic() - self.started_at

    def check_alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, f"the app exited:\n{self.stderr()}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"the app did not stop within {timeout} s:\n{self.stderr()}") from None

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop the app and every process of its group (workers included), however the test ended."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float, check: Callable[[], None] | None = None) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (``check`` may fail sooner)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if check is not None:
            check()
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.1)


def page_when_built(health: Callable[[], dict], timeout: float = 60) -> str:
    """The chat page's state in ``/api/health`` once it is no longer ``starting`` (built just after start-up)."""
    deadline = time.monotonic() + timeout
    while (page := health()["page"]) == "starting":
        assert time.monotonic() < deadline, f"the chat page was not built within {timeout} s"
        time.sleep(0.05)
    return page


@dataclass
class Reply:
    """One request the load generator sent."""

    sent: float
    received: float
    status: int | str
    question: str
    answer: str = ""


@dataclass
class Hammer:
    """Closed-loop clients asking questions on ``/api/chat`` until stopped or ``limit`` requests (bounded)."""

    url: str
    questions: list[str]
    clients: int = 4
    limit: int = 5000
    replies: list[Reply] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(self.clients)]

    def _client(self, number: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            n = number
            while not self._stop.is_set() and len(self.replies) < self.limit:
                question = self.questions[n % len(self.questions)]
                n += self.clients
                sent = time.monotonic()
                try:
                    response = client.post("/api/chat", json={"message": question})
                    body = response.json() if response.status_code == 200 else {}
                    reply = Reply(sent, time.monotonic(), response.status_code, question, body.get("answer", ""))
                except httpx.HTTPError as error:
                    reply = Reply(sent, time.monotonic(), type(error).__name__, question)
                with self._lock:
                    self.replies.append(reply)

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def errors(self) -> Counter[str]:
        with self._lock:
            return Counter(str(r.status) for r in self.replies if r.status != 200 or not r.answer.endswith(DISCLAIMER))
