"""Servers the benchmarks start on loopback: a free port, a real ``chroma run``, ``redis-server`` and PostgreSQL
(the tests use them too).

The tests import these helpers from here (``tests/servers.py`` wraps Redis and PostgreSQL so that a missing one
fails the test); nothing in ``bench/`` imports from ``tests/``. Redis and PostgreSQL come from Debian packages
(``apt-get install -y redis-server postgresql``). PostgreSQL refuses to run as root, so as root it runs as the
``postgres`` user (``runuser``), in a folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL = "apt-get install -y redis-server postgresql"
REDIS_SERVER = "/usr/bin/redis-server"
POSTGRES_ROOT = Path("/usr/lib/postgresql")


class MissingServer(RuntimeError):
    """A server's program is not installed (the message says how to install it)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not installed; install it with:  {INSTALL}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """``chroma run`` on loopback that a caller can stop and start again on the same port and folder."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ChromaServer:
        chroma = Path(sys.executable).with_name("chroma")
        self.process = subprocess.Popen(
            [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"ANONYMIZED_TELEMETRY": "False", "PATH": "/usr/bin:/bin"},
        )
        deadline = time.monotonic() + timeout
        while not self.alive():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"chroma run did not start on port {self.port}")
            time.sleep(0.2)
        return self

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process(self.process)
        self.process = None
        deadline = time.monotonic() + 10
        while self._port_busy() and time.monotonic() < deadline:  # so a restart can bind the same port
            time.sleep(0.1)

    def _port_busy(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


@contextmanager
def chroma_server(path: Path, port: int | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Run ``chroma run`` on loopback until the block ends; yields its URL."""
    server = ChromaServer(path, port).start(timeout)
    try:
        yield server.url
    finally:
        server.stop()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop a server process: SIGTERM, then SIGKILL if it is still running after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def wait_for_port(port: int, timeout: float, alive: subprocess.Popen[bytes] | None = None) -> None:
    """Until something listens on loopback ``port``; fails if ``alive`` exits first or after ``timeout`` s."""
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

    def __init__(self, folder: Path, binary: str = REDIS_SERVER) -> None:
        if not os.access(binary, os.X_OK):
            raise MissingServer("redis-server")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                   "--save", "", "--appendonly", "no", "--protected-mode", "yes"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 20, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None


def postgres_bin(root: Path = POSTGRES_ROOT) -> Path:
    """The newest installed PostgreSQL's ``bin`` folder."""
    found = sorted(root.glob("*/bin/initdb"))
    if not found:
        raise MissingServer("PostgreSQL")
    return found[-1].parent


class PostgresServer:
    """A PostgreSQL cluster of its own (``initdb``) on a free loopback port; as root, run as ``postgres``."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin = bin_dir or postgres_bin()
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
        wait_for_port(self.port, 30)

    def pause(self) -> None:
        """Stop immediately (``-m immediate``: like a crash; committed rows survive)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().split()[0])
        return None

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
