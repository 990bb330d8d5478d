"""Load on ``POST /api/chat`` (or the OpenAI-compatible ``POST /v1/chat/completions``): throughput, latency, errors
and server memory, with N concurrent clients.

Starts the real server (``python app.py``) on a free loopback port with the index in ``BOT_INDEX_DIR``,
measures start to ready (``/api/health`` OK), then sends ``--requests`` questions from ``--clients``
concurrent clients (closed loop: each client sends its next question when the last one is answered), stopping
early at ``--max-seconds``. Questions cycle through the eval sets, as a gym's members repeat the common ones;
``--unique`` makes every question distinct (no query-vector cache hits) to show the cold cost too.
Rate limits are lifted for the run. Loopback only. Run: ``python -m bench.http_load``.

``--route openai`` loads ``/v1/chat/completions`` instead; ``--route both`` loads both in the same run, in
``--rounds`` alternating segments (api, openai, openai, api, …, so that the machine's drift falls on both
alike), ``--requests`` each, and prints the chat-completions route's throughput as a share of ``/api/chat``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import yaml

from bench.common import SETS, percentile, summary, write_result
from bench.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def _openai_text(body: dict[str, Any]) -> str | None:
    choices = body.get("choices") or [{}]
    text: str | None = choices[0].get("message", {}).get("content")
    return text


#: What a run can load, by name: the path, the request body for a question, and the answer text in a reply.
ROUTES: dict[str, tuple[str, Callable[[str], dict[str, Any]], Callable[[dict[str, Any]], str | None]]] = {
    "api": ("/api/chat", lambda q: {"message": q, "history": []}, lambda body: body.get("answer")),
    "openai": (
        "/v1/chat/completions",
        lambda q: {"model": "knee-coach", "messages": [{"role": "user", "content": q}]},
        _openai_text,
    ),
}


def questions() -> list[str]:
    found = []
    for path in sorted(SETS.glob("*.yaml")):
        found += [c["question"] for c in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"] if c.get("question")]
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def torch_loaded(pid: int) -> bool:
    """Whether the process has torch's library mapped (a server on ONNX must not)."""
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def embed_batches(url: str) -> dict[str, float]:
    """The server's embedding batches and texts so far (``bot_embed_batch_size``; empty before this metric existed)."""
    found: dict[str, float] = {}
    for line in httpx.get(f"{url}/api/metrics", timeout=10).text.splitlines():
        for name in ("count", "sum"):
            if line.startswith(f"bot_embed_batch_size_{name} "):
                found[name] = float(line.split()[1])
    return found


def start_server(port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float, float]:
    """``python app.py`` on a loopback ``port``: the process, and seconds until ``/api/health`` said ready
    (the API answers) and until the chat page was served too."""
    env = {**env, "BOT_HOST": "127.0.0.1", "BOT_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    ready_s: float | None = None
    with httpx.Client() as client:
        while time.perf_counter() - started < 180:
            if server.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                health = client.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                if health.status_code == 200:
                    ready_s = ready_s or time.perf_counter() - started
                    if health.json()["page"] != "starting":
                        return server, ready_s, time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    server.terminate()
    raise SystemExit("the server was not ready within 180 s")


async def load(url: str, pool: list[str], *, clients: int, total: int, max_seconds: float, unique: bool,
               memory: Callable[[], dict[str, float]], every: int, route: str = "api") -> dict[str, Any]:  # fmt: skip
    """Send ``total`` questions to ``route`` from ``clients`` closed-loop clients (stopping at ``max_seconds``).

    Returns the latencies (ms), errors by status or exception, the seconds taken, and ``memory()``
    sampled at the start, every ``every`` requests and at the end.
    """
    path, request_body, answer_text = ROUTES[route]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    samples = [{"requests": 0, **memory()}]
    sent = 0
    deadline = time.perf_counter() + max_seconds

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal sent
        while sent < total and time.perf_counter() < deadline:
            n = sent
            sent += 1
            question = pool[n % len(pool)] + (f" (ask {n})" if unique else "")
            began = time.perf_counter()
            try:
                async with http.post(f"{url}{path}", json=request_body(question)) as response:
                    body = await response.json(content_type=None)
                    if response.status != 200 or not answer_text(body):
                        errors[str(response.status)] = errors.get(str(response.status), 0) + 1
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            latencies.append((time.perf_counter() - began) * 1000)
            if len(latencies) % every == 0:
                samples.append({"requests": len(latencies), **memory()})

    # aiohttp rather than httpx: httpx's client spent 7.6 ms of CPU a request, more than the server it measured,
    # so on two cores the load generator became the bottleneck and its own queueing showed up as latency.
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - began
    if samples[-1]["requests"] != len(latencies):
        samples.append({"requests": len(latencies), **memory()})
    return {"latencies": latencies, "errors": errors, "seconds": elapsed, "memory": samples}


def measure(url: str, pool: list[str], args: argparse.Namespace, server: subprocess.Popen[bytes], *, route: str,
            total: int) -> dict[str, Any]:  # fmt: skip
    """One segment of load on ``route``, with the server's and this process's CPU time spent on it."""

    def memory() -> dict[str, float]:
        return {"server": rss_mb(server.pid)}

    server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
    run = asyncio.run(load(url, pool, clients=args.clients, total=total, max_seconds=args.max_seconds,
                           unique=args.unique, memory=memory, every=1000, route=route))  # fmt: skip
    run["server_cpu"], run["client_cpu"] = cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
    return run


def summarise(segments: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    """One route's figures over its segments."""
    latencies = [ms for segment in segments for ms in segment["latencies"]]
    errors: dict[str, int] = {}
    for segment in segments:
        for kind, count in segment["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    elapsed = sum(segment["seconds"] for segment in segments)
    server_cpu = sum(segment["server_cpu"] for segment in segments)
    client_cpu = sum(segment["client_cpu"] for segment in segments)
    return {
        "clients": clients,
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "answers_per_s": round(len(latencies) / elapsed, 1),
        "segments_answers_per_s": [round(len(segment["latencies"]) / segment["seconds"], 1) for segment in segments],
        "latency": summary(latencies) | {"p99_ms": round(percentile(latencies, 99), 3)},
        "errors": errors,
        "rss_mb": [(sample["requests"], sample["server"]) for segment in segments for sample in segment["memory"]],
        "server_cpu_ms_per_answer": round(server_cpu / max(1, len(latencies)) * 1000, 2),
        "server_cpu_utilisation": round(server_cpu / elapsed, 2),
        "client_cpu_ms_per_request": round(client_cpu / max(1, len(latencies)) * 1000, 2),
    }


def report(name: str, figures: dict[str, Any]) -> None:
    lat = figures["latency"]
    print(f"{name}: {figures['requests']} requests, {figures['clients']} clients, {figures['seconds']:.1f} s: "
          f"{figures['answers_per_s']} answers/s, "
          f"p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, "
          f"errors {sum(figures['errors'].values())} {figures['errors'] or ''}")  # fmt: skip
    print(
        f"  server CPU {figures['server_cpu_ms_per_answer']} ms/answer (using {figures['server_cpu_utilisation']} "
        f"cores), client CPU {figures['client_cpu_ms_per_request']} ms/request; answers/s by segment "
        f"{figures['segments_answers_per_s']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=5000, help="per route")
    parser.add_argument("--max-seconds", type=float, default=300, help="stop sending after this long (per segment)")
    parser.add_argument("--warmup", type=int, default=200, help="requests before measuring (not counted), per route")
    parser.add_argument("--unique", action="store_true", help="make every question distinct (cold embeddings)")
    parser.add_argument("--route", choices=[*ROUTES, "both"], default="api",
                        help="api: /api/chat; openai: /v1/chat/completions; both: alternating, compared")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=4, help="with --route both: segments per route")
    args = parser.parse_args()

    routes = list(ROUTES) if args.route == "both" else [args.route]
    rounds = args.rounds if args.route == "both" else 1
    # api, openai, openai, api, …: each route runs as often first as second, early and late in the run
    order = [name for i in range(rounds) for name in (routes if i % 2 == 0 else routes[::-1])]
    pool = questions()
    segments: dict[str, list[dict[str, Any]]] = {name: [] for name in routes}
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        limits_lifted = {"BOT_RATE_LIMIT": "1000000/minute", "BOT_DAILY_CAP_PER_ORIGIN": "0"}
        server, ready_s, page_s = start_server(port, {**os.environ, "BOT_DATA_DIR": data_dir, **limits_lifted})
        url = f"http://127.0.0.1:{port}"
        try:
            print(f"server ready in {ready_s:.2f} s (start to /api/health OK), chat page in {page_s:.2f} s; "
                  "warming up…", flush=True)  # fmt: skip
            for name in routes:
                measure(url, pool, args, server, route=name, total=args.warmup)
            batches = embed_batches(url)
            for name in order:
                share = args.requests // rounds + (1 if len(segments[name]) < args.requests % rounds else 0)
                segments[name].append(measure(url, pool, args, server, route=name, total=share))
            after = embed_batches(url)
            calls = after.get("count", 0.0) - batches.get("count", 0.0)
            batch_mean = round((after.get("sum", 0.0) - batches.get("sum", 0.0)) / calls, 2) if calls else None
            torch_in_server = torch_loaded(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    figures = {name: summarise(runs, args.clients) for name, runs in segments.items()}
    common = {
        "unique_questions": args.unique,
        "question_pool": len(pool),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "embed_calls": calls,
        "embed_batch_mean": batch_mean,
        "torch_loaded_in_server": torch_in_server,
        "start_to_ready_s": round(ready_s, 2),
        "start_to_page_s": round(page_s, 2),
        "cpus": os.cpu_count(),
    }
    if args.route == "both":
        ratio = figures["openai"]["answers_per_s"] / figures["api"]["answers_per_s"]
        result = {"routes": figures, "rounds": rounds, "openai_vs_api_throughput": round(ratio, 3), **common}
        name = "http_load_both"
    else:
        result = {"route": args.route, **figures[args.route], **common}
        name = "http_load" + ("" if args.route == "api" else f"_{args.route}")
    path = write_result(name + ("_unique" if args.unique else ""), result)
    for route_name, route_figures in figures.items():
        report(f"{ROUTES[route_name][0]}", route_figures)
    if args.route == "both":
        print(f"/v1/chat/completions throughput = {result['openai_vs_api_throughput']:.3f} × /api/chat's "
              f"({rounds} alternating segments of each)")  # fmt: skip
    print(f"embedding batches {calls:.0f} (mean batch {batch_mean}); torch loaded in the server: {torch_in_server}")
    rss = [sample for route_figures in figures.values() for sample in route_figures["rss_mb"]]
    print(f"server RSS (MB) by requests done: {rss}; start to ready {ready_s:.2f} s, load average "
          f"{result['load_average_1m']}  → {path}")  # fmt: skip


if __name__ == "__main__":
    main()
