"""``python -m bot eval --url`` as the QA machine runs it, against a fake coach on loopback: the engine is never
imported, the proxy variables and ``--cacert`` work, and every server that can't be evaluated is one plain
message with exit code 3, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from bot.evaluate.remote import Connection, ServerOptions, TlsFailure, Unreachable, check_server
from bot.settings import PROJECT_ROOT
from tests.evaluate.fake_coach import FakeCoach, LoopbackCoach, refusal
from tests.evaluate.test_remote import SET

#: Modules a remote run must never import: the engine and what it loads (the model, the store, the web stack).
#: (tantivy's analyzer is imported: it is how the groundedness metric splits words, as bot.language does.)
ENGINE_MODULES = ("bot.engine", "bot.stages", "bot.index", "bot.models", "bot.server", "torch", "transformers",
                  "sentence_transformers", "chromadb", "langchain", "langchain_core", "langchain_huggingface",
                  "gradio", "fastapi", "uvicorn", "llama_cpp")  # fmt: skip

#: Runs the command line, then writes every module it imported to the file named first.
PROBE = """
import atexit, json, runpy, sys
modules_file = sys.argv[1]
atexit.register(lambda: open(modules_file, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["bot", "eval", *sys.argv[2:]]
runpy.run_module("bot", run_name="__main__")
"""


@pytest.fixture
def qa_files(tmp_path: Path) -> tuple[Path, Path]:
    """A two-case set and minimums the fake coach's answers meet."""
    question_set, thresholds = tmp_path / "remote.yaml", tmp_path / "thresholds.yaml"
    question_set.write_text(SET, encoding="utf-8")
    thresholds.write_text("every_set:\n  disclaimer: 1.0\n  key_coverage: 1.0\n", encoding="utf-8")
    return question_set, thresholds


def run_cli(*args: str, modules_file: Path | None = None, env: dict[str, str] | None = None):
    command = [sys.executable, "-c", PROBE, str(modules_file or os.devnull)] if modules_file else [
        sys.executable, "-m", "bot", "eval"]  # fmt: skip
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
                          env={**os.environ, **(env or {})}, check=False)  # fmt: skip


@pytest.mark.slow  # the command line in a subprocess: a few seconds each
def test_a_remote_run_never_imports_the_engine_and_writes_every_report(qa_files, tmp_path: Path) -> None:
    question_set, thresholds = qa_files
    modules_file = tmp_path / "modules.json"
    with LoopbackCoach(FakeCoach()) as coach:
        result = run_cli("--url", coach.url, "--set", str(question_set), "--thresholds", str(thresholds),
                         "--out", str(tmp_path / "out"), modules_file=modules_file)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Gate passed" in result.stdout and f"Server {coach.url} via POST /api/chat/stream" in result.stdout
    imported = json.loads(modules_file.read_text(encoding="utf-8"))
    loaded = [m for m in imported if m.split(".")[0] in ENGINE_MODULES or m.startswith(ENGINE_MODULES[:5])]
    assert loaded == [] and "bot.evaluate.remote.askers" in imported
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["results.jsonl", "summary.json", "report.md", "report.html", "junit.xml"])  # fmt: skip


@pytest.mark.slow  # the command line in a subprocess: a few seconds each
@pytest.mark.parametrize(
    ("fake", "args", "words"),
    [
        (None, ["--url", "http://127.0.0.1:9"], "Can't reach http://127.0.0.1:9"),
        (FakeCoach(health={"status": "ok"}), [], "is not the knee-pain coach: GET /api/health answered 200"),
        (
            FakeCoach(script=[refusal(429, "rate_limited", retry_after="3600")] * 8),
            ["--max-wait", "60"],
            "asks to wait 3600 s more, past --max-wait 60 s. Give the suite a QA key",
        ),
        (
            FakeCoach(script=[refusal(401, "invalid_api_key", openai=True)]),
            ["--openai"],
            "401 invalid_api_key: plain words about invalid_api_key. If the server needs a key",
        ),
    ],
    ids=["unreachable", "not-the-coach", "limit-never-clears", "refused"],
)
def test_a_server_that_cannot_be_evaluated_is_one_message_and_exit_3(fake, args, words, qa_files, tmp_path) -> None:
    question_set, _ = qa_files
    common = ["--set", str(question_set), "--out", str(tmp_path / "out")]
    if fake is None:
        result = run_cli(*common, *args)
    else:
        with LoopbackCoach(fake) as coach:
            result = run_cli(*common, "--url", coach.url, *args)
    assert result.returncode == 3, result.stdout + result.stderr
    assert words in result.stderr and "no report written" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # the command line in a subprocess: a few seconds each
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--openai", "--no-stream"], "--no-stream, --openai apply only with --url"),
        (["--url", "http://127.0.0.1:9", "--composer", "local"], "--composer applies in process"),
        (["--url", "coach.example"], "is not an address such as"),
        (["--url", "http://127.0.0.1:9", "--header", "Authorization Bearer s3cret-key"], "not 'Name: value'"),
    ],
)
def test_wrong_options_are_exit_2_before_any_request(args: list[str], words: str) -> None:
    result = run_cli("--set", "core", *args)
    assert result.returncode == 2 and words in result.stderr and "s3cret" not in result.stderr


# -- proxies and TLS ------------------------------------------------------------------------------------


def test_the_proxy_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackCoach(FakeCoach()) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with Connection(ServerOptions("http://coach-staging.gym.invalid")) as connection:
            assert check_server(connection).ready
        assert proxy.targets == ["http://coach-staging.gym.invalid/api/health"]  # absolute: sent to the proxy
        monkeypatch.setenv("NO_PROXY", "coach-staging.gym.invalid")
        with (
            Connection(ServerOptions("http://coach-staging.gym.invalid", timeout=5)) as connection,
            pytest.raises(Unreachable, match=re.escape("Can't reach http://coach-staging.gym.invalid")),
        ):
            check_server(connection)  # not through the proxy: the name doesn't resolve


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA and a certificate it signed for 127.0.0.1 (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the TLS tests make their certificates with the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    files = {name: folder / name for name in ("ca.pem", "ca.key", "leaf.pem", "leaf.key", "leaf.csr", "ext.cnf")}
    files["ext.cnf"].write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")  # fmt: skip
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", files["ca.key"], "-out", files["ca.pem"],
         "-days", "2", "-subj", "/CN=Gym test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", files["leaf.key"], "-out", files["leaf.csr"],
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", files["leaf.csr"], "-CA", files["ca.pem"], "-CAkey", files["ca.key"],
         "-CAcreateserial", "-out", files["leaf.pem"], "-days", "2", "-extfile", files["ext.cnf"]],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=60)
    return files


def test_tls_needs_the_private_ca_which_cacert_or_ssl_cert_file_gives(certificates, monkeypatch) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates["leaf.pem"], certificates["leaf.key"])
    with LoopbackCoach(FakeCoach(), tls=context) as coach:
        with (
            Connection(ServerOptions(coach.url)) as connection,
            pytest.raises(TlsFailure, match=r"certificate verify failed.*pass it with --cacert CA\.pem"),
        ):
            check_server(connection)
        with Connection(ServerOptions(coach.url, cacert=certificates["ca.pem"])) as connection:
            assert check_server(connection).ready
        with (
            Connection(ServerOptions(coach.url, cacert=certificates["leaf.pem"])) as connection,
            pytest.raises(TlsFailure, match="not signed by a CA in --cacert"),
        ):
            check_server(connection)  # the server's own certificate is no CA
        monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca.pem"]))
        with Connection(ServerOptions(coach.url)) as connection:
            assert check_server(connection).ready
