"""Wall time of every eval set in process against ``python -m bot eval --url`` on loopback, in the same run.

Starts the real server (``python app.py``) on a free loopback port with a fresh index, loads the engine in this
process too, warms both up with one pass (timed, not counted), then alternates runs of every set: in process,
and through the server's streaming route at concurrency 1 and 4, ``/api/chat`` and streamed chat completions
at 4 (``--rounds`` times, ABAB, so the machine's drift hits both). Retrieval caches are off on both sides
(``BOT_CACHE_SIZE=0``), so no run profits from an earlier one. Each remote run's answers are compared with the
in-process run's (status, text, citations). Prints the wall times, their medians and the ratio to in process;
writes JSON to bench/results/.

    python -m bench.eval_remote [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import write_result
from bench.servers import free_port
from bot.evaluate.loader import default_set_paths, load_question_sets
from bot.evaluate.remote import Connection, Route, ServerOptions, check_server, remote_asker
from bot.evaluate.runner import EvaluationRun, run_evaluation
from bot.settings import PROJECT_ROOT, Settings

#: (label, route, concurrency) of each remote run; "in process" runs before each round's remote runs.
REMOTE_RUNS = [
    ("--url (stream, 1 at a time)", Route.stream, 1),
    ("--url (stream, 4 at a time)", Route.stream, 4),
    ("--url --no-stream (4)", Route.chat, 4),
    ("--url --openai (4)", Route.openai_stream, 4),
]
IN_PROCESS = "in process"


def start_server(port: int, index_dir: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BOT_HOST": "127.0.0.1", "BOT_PORT": str(port), "BOT_INDEX_DIR": str(index_dir),
           "BOT_DATA_DIR": str(data_dir), "BOT_RATE_LIMIT": "1000000/minute", "BOT_DAILY_CAP_PER_ORIGIN": "0",
           "BOT_CACHE_SIZE": "0", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    server = subprocess.Popen([sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server was not ready within 180 s")


def replies(run: EvaluationRun) -> dict[str, Any]:
    return {r.name: (r.answer.status, r.answer.answer, r.answer.citations) if r.answer else None for r in run.results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from bot.engine.engine import Engine

    with tempfile.TemporaryDirectory(prefix="eval-remote-") as tmp:
        folder = Path(tmp)
        port = free_port()
        server = start_server(port, folder / "server-index", folder / "data")
        try:
            settings = Settings(index_dir=folder / "local-index", cache_size=0)
            engine = Engine.load(settings)
            sets = load_question_sets(default_set_paths(), corpus_dir=settings.corpus_dir)
            times: dict[str, list[float]] = {IN_PROCESS: [], **{label: [] for label, _, _ in REMOTE_RUNS}}
            identical: dict[str, int] = {}
            with Connection(ServerOptions(f"http://127.0.0.1:{port}")) as connection:
                health = check_server(connection)
                # Warm-up, not counted: the first pass on either side is 3-4x slower (torch's first calls, lazy loads).
                streaming = remote_asker(connection, health, Route.stream)
                warm_local = run_evaluation(engine, sets).seconds
                warm_remote = run_evaluation(streaming, sets, concurrency=4).seconds
                print(f"warm-up (first pass): {IN_PROCESS} {warm_local:.1f} s, --url (stream, 4) {warm_remote:.1f} s")
                for round_ in range(args.rounds):
                    local = run_evaluation(engine, sets)
                    times[IN_PROCESS].append(local.seconds)
                    expected = replies(local)
                    print(f"round {round_ + 1}: {IN_PROCESS}: {local.seconds:.1f} s", flush=True)
                    for label, route, concurrency in REMOTE_RUNS:
                        remote = run_evaluation(remote_asker(connection, health, route), sets, concurrency=concurrency)
                        times[label].append(remote.seconds)
                        got = replies(remote)
                        identical[label] = sum(got[name] == reply for name, reply in expected.items())
                        print(f"round {round_ + 1}: {label}: {remote.seconds:.1f} s, "
                              f"{identical[label]}/{len(expected)} answers identical", flush=True)  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=60)
    base = statistics.median(times[IN_PROCESS])
    figures = {label: {"seconds": runs, "median_s": round(statistics.median(runs), 2),
                       "ratio_to_in_process": round(statistics.median(runs) / base, 2),
                       "identical": identical.get(label, len(expected))} for label, runs in times.items()}  # fmt: skip
    print(f"\n{len(expected)} cases, {args.rounds} rounds, retrieval caches off on both sides (medians):")
    for label, figure in figures.items():
        print(f"  {label:30s} {figure['median_s']:6.1f} s  {figure['ratio_to_in_process']:.2f}x  "
              f"{figure['identical']}/{len(expected)} identical")  # fmt: skip
    warm = {"in_process_s": warm_local, "remote_stream_4_s": warm_remote}
    path = write_result("eval_remote", {"cases": len(expected), "rounds": args.rounds, "warm_up": warm,
                                        "runs": figures})  # fmt: skip
    print(f"Results: {path}")


if __name__ == "__main__":
    main()
