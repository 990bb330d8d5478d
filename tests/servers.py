"""Real Redis and PostgreSQL servers for the integration tests, on free loopback ports with throw-away data dirs.

Both come from Debian packages (``apt-get install -y redis-server postgresql``; ``make servers`` and ``.ci/run``
install them as root). A missing server fails the test with that command — never a silent skip. PostgreSQL
refuses to run as root, so as root it runs as the ``postgres`` user (``runuser``), in a folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import pytest

from bench.servers import free_port

INSTALL = "apt-get install -y redis-server postgresql"
REDIS_SERVER = "/usr/bin/redis-server"
POSTGRES_ROOT = Path("/usr/lib/postgresql")


def _missing(what: str) -> NoReturn:
    pytest.fail(f"{what} is not installed; install it with:  {INSTALL}", pytrace=False)


def _wait_for_port(port: int, timeout: float, alive: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the server exited with {alive.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence; can be stopped and started again on that port."""

    def __init__(self, folder: Path) -> None:
        if not os.access(REDIS_SERVER, os.X_OK):  # read when called, so a test can point it elsewhere
            _missing("redis-server")
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                   "--save", "", "--appendonly", "no", "--protected-mode", "yes"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, 20, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def _postgres_bin() -> Path:
    found = sorted(POSTGRES_ROOT.glob("*/bin/initdb"))
    if not found:
        _missing("PostgreSQL")
    return found[-1].parent


class PostgresServer:
    """A PostgreSQL cluster of its own (``initdb``) on a free loopback port; as root, run as ``postgres``."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.as_root = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="bot-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.user = "postgres" if self.as_root else os.environ.get("USER", "postgres")
        self.url = f"postgresql://{self.user}:secret-pw@127.0.0.1:{self.port}/coach"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return subprocess.run([*prefix, *command], check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        password = self.folder / "pw"
        password.write_text("secret-pw\n")
        if self.as_root:
            shutil.chown(password, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=scram-sha-256",
                  f"--pwfile={password}", "-E", "UTF8", "--no-sync")  # fmt: skip
        self.resume()
        self._run("env", "PGPASSWORD=secret-pw", str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", self.user, "coach")  # fmt: skip
        return self

    def resume(self) -> None:
        """Start (again) on the same port and data; nothing to do while it runs."""
        if self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0:
            return
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"),
                  "-w", "-t", "60", "start")  # fmt: skip
        _wait_for_port(self.port, 30)

    def pause(self) -> None:
        """Stop immediately (``-m immediate``: like a crash; committed rows survive)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
