"""Soak: many ``POST /api/chat`` requests across several workers on a Chroma server; errors and memory over time.

Starts a real ``chroma run`` and builds the index through it (``python -m bot index``), then serves it with
``python app.py`` and ``BOT_WORKERS`` worker processes on a free loopback port, and sends ``--requests``
questions from ``--clients`` concurrent closed-loop clients (rate limits lifted), stopping early at
``--max-seconds``. Reports throughput, p50/p95/p99 latency, errors, each worker's resident memory (and the
Chroma server's) at the start and end and every 2,000 requests, CPU used, and the load average, so a
busy machine shows. Questions cycle through the eval sets; ``--unique`` makes every one new (no cache hits).
Loopback only. Run: ``python -m bench.soak [--requests 20000] [--clients 64] [--workers 2] [--unique]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx

from bench.common import percentile, summary, write_result
from bench.http_load import cpu_seconds, load, questions, rss_mb
from bench.servers import ChromaServer, free_port

ROOT = Path(__file__).resolve().parent.parent


def start_app(env: dict[str, str], port: int, workers: int,
              log: Path | None = None) -> tuple[subprocess.Popen[bytes], float, list[int]]:  # fmt: skip
    """The app with ``workers`` processes (standard error to ``log``, if given); returns it, seconds to the first
    ready answer, and the worker pids."""
    started = time.perf_counter()
    stderr = log.open("ab") if log is not None else subprocess.DEVNULL
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stderr=stderr,
                           start_new_session=True)  # its own group: the workers go with it  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/health"
    ready_s: float | None = None
    pids: set[int] = set()
    while len(pids) < workers:
        if app.poll() is not None:
            raise SystemExit("the app exited during start-up")
        if time.perf_counter() - started > 300:
            app.terminate()
            raise SystemExit(f"only {len(pids)} of {workers} workers were ready within 300 s")
        try:
            with httpx.Client(timeout=2) as client:  # a new connection each time: any worker may take it
                response = client.get(url)
            if response.status_code == 200:
                ready_s = ready_s or time.perf_counter() - started
                pids.add(response.json()["worker"])
        except httpx.HTTPError:
            time.sleep(0.1)
    assert ready_s is not None
    return app, ready_s, sorted(pids)


def memory(pids: list[int], chroma_pid: int) -> dict[str, float]:
    return {**{f"worker {pid}": rss_mb(pid) for pid in pids}, "chroma": rss_mb(chroma_pid)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=1800, help="stop sending after this long")
    parser.add_argument("--warmup", type=int, default=500, help="requests before measuring (not counted)")
    parser.add_argument("--unique", action="store_true", help="make every question distinct (no cache hits)")
    args = parser.parse_args()

    pool = questions()
    with tempfile.TemporaryDirectory(prefix="bot-soak-") as scratch:
        chroma = ChromaServer(Path(scratch) / "chroma").start()
        port = free_port()
        env = {**os.environ, "BOT_HOST": "127.0.0.1", "BOT_PORT": str(port), "BOT_WORKERS": str(args.workers),
               "BOT_CHROMA_URL": chroma.url, "BOT_INDEX_DIR": f"{scratch}/index", "BOT_DATA_DIR": f"{scratch}/data",
               "BOT_RATE_LIMIT": "1000000/minute", "BOT_DAILY_CAP_PER_ORIGIN": "0", "HF_HUB_OFFLINE": "1"}  # fmt: skip
        app = None
        try:
            subprocess.run([sys.executable, "-m", "bot", "index"], cwd=ROOT, env=env, check=True, capture_output=True)
            app, ready_s, pids = start_app(env, port, args.workers)
            assert chroma.process is not None
            chroma_pid = chroma.process.pid
            url = f"http://127.0.0.1:{port}"
            print(f"{args.workers} workers {pids} ready ({ready_s:.1f} s to the first); warming up…", flush=True)
            sample = partial(memory, pids, chroma_pid)
            asyncio.run(load(url, pool, clients=args.clients, total=args.warmup, max_seconds=120, unique=args.unique,
                             memory=sample, every=2000))  # fmt: skip
            cpu_before = {pid: cpu_seconds(pid) for pid in [*pids, chroma_pid]}
            client_before = time.process_time()
            run = asyncio.run(load(url, pool, clients=args.clients, total=args.requests, max_seconds=args.max_seconds,
                                   unique=args.unique, memory=sample, every=2000))  # fmt: skip
            cpu = {pid: cpu_seconds(pid) - before for pid, before in cpu_before.items()}
            client_cpu = time.process_time() - client_before
            load_average = os.getloadavg()
        finally:
            if app is not None:
                app.terminate()  # SIGTERM: the parent stops its workers gracefully
                with contextlib.suppress(subprocess.TimeoutExpired):
                    app.wait(timeout=60)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(app.pid, signal.SIGKILL)
            chroma.stop()

    latencies, seconds, samples = run["latencies"], run["seconds"], run["memory"]
    first, last = samples[0], samples[-1]
    result = {
        "workers": args.workers,
        "clients": args.clients,
        "requests": len(latencies),
        "unique_questions": args.unique,
        "question_pool": len(pool),
        "seconds": round(seconds, 1),
        "answers_per_s": round(len(latencies) / seconds, 1),
        "latency": summary(latencies) | {"p99_ms": round(percentile(latencies, 99), 3)},
        "errors": run["errors"],
        "rss_mb": samples,
        "rss_growth_mb": {k: round(last[k] - first[k], 1) for k in first if k != "requests"},
        "cpu_s": {("chroma" if pid == chroma_pid else f"worker {pid}"): round(v, 1) for pid, v in cpu.items()},
        "client_cpu_s": round(client_cpu, 1),
        "load_average": [round(x, 2) for x in load_average],
        "first_worker_ready_s": round(ready_s, 2),
        "cpus": os.cpu_count(),
    }
    path = write_result("soak" + ("_unique" if args.unique else ""), result)
    lat = result["latency"]
    print(f"{result['requests']} requests, {args.clients} clients, {args.workers} workers, {seconds:.0f} s: "
          f"{result['answers_per_s']} answers/s, p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, "
          f"p99 {lat['p99_ms']:.0f} ms, errors {sum(run['errors'].values())} {run['errors'] or ''}")  # fmt: skip
    print("RSS MB at start → end: " + ", ".join(f"{k} {first[k]} → {last[k]}" for k in first if k != "requests"))
    print(f"CPU s: {result['cpu_s']}, client {result['client_cpu_s']}; load average {result['load_average']}  → {path}")


if __name__ == "__main__":
    main()
