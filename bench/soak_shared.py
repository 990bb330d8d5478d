"""Soak over the shared servers: two app instances × two workers, one Chroma server, one Redis, one PostgreSQL.

Starts a real ``chroma run``, ``redis-server`` and PostgreSQL (``bench/servers.py``) on loopback, builds the index
through the Chroma server (``python -m bot index``), then serves it with two ``python app.py`` instances of
``--workers`` processes each, on ports of their own, with a ``BOT_DATA_DIR`` each and nothing shared but the
servers' URLs, ``BOT_INDEX_DIR`` and ``BOT_SIGNING_KEY`` (every instance of one deployment shares the key).
Limits are counted in Redis but set high enough never to refuse (``1000000/minute``); ratings go to PostgreSQL.

Each run sends ``--requests`` requests from ``--clients`` closed-loop clients, half of them on each instance;
every ``--rate-every``-th request of a client is a thumbs up or down on its last answer, sent to the *other*
instance (as a load balancer may). Two runs over the same servers, one after the other:

* ``steady``: throughput, p50/p95/p99 of the answers and of the ratings, errors (must be 0), each worker's
  resident memory at the start, middle and end (flat), and the ratings acknowledged (201 with an id) against
  those in PostgreSQL and those ``python -m bot feedback export`` writes (the thumbs-down; sets must be equal);
* ``redis_outage``: the same with Redis stopped for ``--outage-seconds`` at 40 % of the requests and started
  again on its port: 0 errors, answers during the outage, what ``/api/health`` said (``limits: degraded``
  during, ``redis`` again after) and how long until every worker counted in Redis again.

Prints the figures and the load average (the machine may be shared); writes ``bench/results/soak_shared-*.json``.
Loopback only. Run: ``python -m bench.soak_shared [--requests 8000] [--clients 48] [--outage-seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from pydantic import SecretStr

from bench.common import percentile, summary, write_result
from bench.http_load import cpu_seconds, questions, rss_mb
from bench.servers import ChromaServer, PostgresServer, RedisServer, free_port
from bench.soak import start_app
from bot.feedback import FeedbackStore

ROOT = Path(__file__).resolve().parent.parent


class Instances:
    """The app instances, their workers and the shared servers, for sampling memory and asking health."""

    def __init__(self, urls: list[str], workers: dict[str, list[int]], chroma: ChromaServer, redis: RedisServer,
                 postgres: PostgresServer) -> None:  # fmt: skip
        self.urls, self.workers = urls, workers
        self.chroma, self.redis, self.postgres = chroma, redis, postgres

    def memory(self) -> dict[str, float]:
        found = {f"{url.rsplit(':', 1)[1]}/{pid}": rss_mb(pid) for url in self.urls for pid in self.workers[url]}
        for name, process in (("chroma", self.chroma.process), ("redis", self.redis.process)):
            if process is not None and process.poll() is None:
                found[name] = rss_mb(process.pid)
        postmaster = self.postgres.pid()
        if postmaster is not None:
            found["postgres"] = rss_mb(postmaster)
        return found

    def pids(self) -> list[int]:
        return [pid for url in self.urls for pid in self.workers[url]]


async def health(url: str) -> dict[str, Any] | None:
    """``/api/health`` over a new connection (so any worker of the instance may answer), or ``None``."""
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with (aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
                    http.get(f"{url}/api/health") as response):  # fmt: skip
            body: dict[str, Any] = await response.json()
            return body
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return None


async def outage(instances: Instances, progress: dict[str, int], *, at: int, seconds: float) -> dict[str, Any]:
    """Stop Redis once ``at`` requests are done, poll every worker's health, start it again after ``seconds``."""
    while progress["done"] < at:
        await asyncio.sleep(0.05)
    polls: list[dict[str, Any]] = []

    async def poll(phase: str) -> None:
        for body in await asyncio.gather(*(health(url) for url in instances.urls for _ in range(4))):
            if body is not None:
                polls.append({"t": round(time.perf_counter() - began, 2), "phase": phase, "worker": body.get("worker"),
                              "limits": body.get("limits"), "ready": body.get("ready")})  # fmt: skip

    answers_before = progress["answers"]
    began = time.perf_counter()
    await asyncio.to_thread(instances.redis.stop)
    while time.perf_counter() - began < seconds:
        await poll("during")
        await asyncio.sleep(0.5)
    answers_during = progress["answers"] - answers_before
    await asyncio.to_thread(instances.redis.start)
    restarted = time.perf_counter()
    back: dict[int, float] = {}  # worker → seconds after the restart when it first said "redis"
    workers = set(instances.pids())
    while set(back) != workers and time.perf_counter() - restarted < 120:
        await poll("after")
        for sample in polls:
            if sample["phase"] == "after" and sample["limits"] == "redis" and sample["worker"] not in back:
                back[sample["worker"]] = round(time.perf_counter() - restarted, 2)
        await asyncio.sleep(0.5)
    during = [p for p in polls if p["phase"] == "during"]
    return {
        "outage_seconds": round(restarted - began, 2),
        "answers_during_outage": answers_during,
        "health_during": _tally(during),
        "workers_degraded_during": sorted({p["worker"] for p in during if p["limits"] == "degraded"}),
        "all_ready_during": all(p["ready"] for p in during),
        "health_after": _tally([p for p in polls if p["phase"] == "after"]),
        "seconds_until_redis_again": back,
        "every_worker_back_on_redis": set(back) == workers,
    }


def _tally(polls: list[dict[str, Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for sample in polls:
        found[str(sample["limits"])] = found.get(str(sample["limits"]), 0) + 1
    return found


async def traffic(instances: Instances, pool: list[str], *, clients: int, total: int, rate_every: int,
                  max_seconds: float, every: int, outage_seconds: float = 0) -> dict[str, Any]:  # fmt: skip
    """``total`` requests from ``clients`` closed-loop clients; every ``rate_every``-th a rating of the last answer."""
    chat_ms: list[float] = []
    rating_ms: list[float] = []
    errors: dict[str, int] = {}
    acknowledged: dict[str, list[int]] = {"up": [], "down": []}
    samples = [{"requests": 0, **instances.memory()}]
    progress = {"sent": 0, "done": 0, "answers": 0}
    deadline = time.perf_counter() + max_seconds

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def client(index: int, http: aiohttp.ClientSession) -> None:
        ask_url = instances.urls[index % len(instances.urls)]
        rate_url = instances.urls[(index + 1) % len(instances.urls)]
        last: dict[str, Any] | None = None
        mine = 0
        while progress["sent"] < total and time.perf_counter() < deadline:
            n = progress["sent"]
            progress["sent"] += 1
            mine += 1
            rating = last is not None and mine % rate_every == 0
            began = time.perf_counter()
            try:
                if rating:
                    thumb = "down" if n % 2 else "up"
                    body: dict[str, Any] = {"rating": thumb, "comment": f"soak {n}", "history": [], "answer": last}
                    async with http.post(f"{rate_url}/api/feedback", json=body) as response:
                        reply = await response.json(content_type=None)
                        if response.status == 201 and isinstance(reply.get("id"), int):
                            acknowledged[thumb].append(reply["id"])
                        else:
                            error(f"rating {response.status} {reply.get('error') if isinstance(reply, dict) else ''}")
                    rating_ms.append((time.perf_counter() - began) * 1000)
                else:
                    question = pool[n % len(pool)]
                    async with http.post(f"{ask_url}/api/chat", json={"message": question, "history": []}) as response:
                        reply = await response.json(content_type=None)
                        if response.status == 200 and reply.get("answer"):
                            last = reply
                            progress["answers"] += 1
                        else:
                            error(f"chat {response.status} {reply.get('error') if isinstance(reply, dict) else ''}")
                    chat_ms.append((time.perf_counter() - began) * 1000)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as failure:
                error(type(failure).__name__)
            progress["done"] += 1
            if progress["done"] % every == 0:
                samples.append({"requests": progress["done"], **instances.memory()})

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        began = time.perf_counter()
        outage_task = None
        if outage_seconds:
            outage_task = asyncio.create_task(outage(instances, progress, at=int(total * 0.4), seconds=outage_seconds))
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        elapsed = time.perf_counter() - began
        outage_figures = await outage_task if outage_task is not None else None
    if samples[-1]["requests"] != progress["done"]:
        samples.append({"requests": progress["done"], **instances.memory()})
    return {"chat_ms": chat_ms, "rating_ms": rating_ms, "errors": errors, "seconds": elapsed, "memory": samples,
            "acknowledged": acknowledged, "outage": outage_figures}  # fmt: skip


def stored(env: dict[str, str], database_url: str) -> dict[str, list[int]]:
    """The ratings' ids in PostgreSQL (all, and the thumbs-down), and those ``bot feedback export`` writes."""
    store = FeedbackStore.connect(SecretStr(database_url), retention_days=180)
    try:
        every_id = [row.id for row in store.rows()]
        down = [row.id for row in store.rows(rating=-1)]
    finally:
        store.close()
    exported = subprocess.run([sys.executable, "-m", "bot", "feedback", "export", "-o", "-"], cwd=ROOT, env=env,
                              check=True, capture_output=True, text=True).stdout  # fmt: skip
    cases = yaml.safe_load(exported)["cases"]
    return {"all": every_id, "down": down, "exported": [int(case["id"].removeprefix("feedback-")) for case in cases]}


def server_errors(folder: Path) -> list[str]:
    """The instances' logged errors: ``ERROR`` lines, and each traceback's exception line; at most 50."""
    found: list[str] = []
    for log in sorted(folder.glob("app-*.log")):
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        for i, line in enumerate(lines):
            if "ERROR" in line or " failed (" in line:
                found.append(f"{log.stem}: {line.strip()[:300]}")
            elif line.startswith("Traceback"):
                rest = [later for later in lines[i + 1 :] if later and not later.startswith(" ")]
                found.append(f"{log.stem}: {rest[0].strip()[:300] if rest else line}")
    return found[:50]


def figures(run: dict[str, Any], clients: int, before: set[int]) -> dict[str, Any]:
    """One run's figures; ``before``: rating ids stored before it."""
    samples = run["memory"]
    first, middle, last = samples[0], samples[len(samples) // 2], samples[-1]
    workers = [k for k in first if "/" in k]
    requests = len(run["chat_ms"]) + len(run["rating_ms"])
    ack = run["acknowledged"]
    db, down, exported = (set(run["stored"][k]) - before for k in ("all", "down", "exported"))
    return {
        "clients": clients,
        "requests": requests,
        "answers": len(run["chat_ms"]),
        "ratings": len(run["rating_ms"]),
        "seconds": round(run["seconds"], 1),
        "requests_per_s": round(requests / run["seconds"], 1),
        "answers_per_s": round(len(run["chat_ms"]) / run["seconds"], 1),
        "latency_chat": summary(run["chat_ms"]) | {"p99_ms": round(percentile(run["chat_ms"], 99), 3)},
        "latency_rating": summary(run["rating_ms"]) | {"p99_ms": round(percentile(run["rating_ms"], 99), 3)},
        "errors": run["errors"],
        "rss_mb": samples,
        "worker_rss_mb_start_middle_end": {k: [first[k], middle[k], last[k]] for k in workers},
        "worker_rss_growth_mb": {k: round(last[k] - first[k], 1) for k in workers},
        "ratings_acknowledged": len(ack["up"]) + len(ack["down"]),
        "ratings_in_postgres": len(db),
        "ratings_acknowledged_equal_stored": set(ack["up"]) | set(ack["down"]) == db,
        "thumbs_down_acknowledged": len(ack["down"]),
        "thumbs_down_exported": len(exported),
        "thumbs_down_acknowledged_equal_exported": set(ack["down"]) == exported == down,
        "cpu_s": run["cpu_s"],
        "load_average": run["load_average"],
        **({"redis_outage": run["outage"]} if run["outage"] else {}),
    }


def report(name: str, result: dict[str, Any]) -> None:
    chat, rating = result["latency_chat"], result["latency_rating"]
    print(f"{name}: {result['requests']} requests ({result['ratings']} ratings), {result['clients']} clients, "
          f"{result['seconds']:.0f} s: {result['requests_per_s']} requests/s ({result['answers_per_s']} answers/s); "
          f"answers p50 {chat['p50_ms']:.0f} ms, p95 {chat['p95_ms']:.0f} ms; ratings p50 {rating['p50_ms']:.0f} ms, "
          f"p95 {rating['p95_ms']:.0f} ms; errors {sum(result['errors'].values())} {result['errors'] or ''}"
          )  # fmt: skip
    print(f"  ratings acknowledged {result['ratings_acknowledged']}, in PostgreSQL {result['ratings_in_postgres']} "
          f"(same ids: {result['ratings_acknowledged_equal_stored']}); thumbs-down acknowledged "
          f"{result['thumbs_down_acknowledged']}, exported {result['thumbs_down_exported']} "
          f"(same: {result['thumbs_down_acknowledged_equal_exported']}); load average {result['load_average']}"
          )  # fmt: skip
    print("  worker RSS MB start/middle/end: " + ", ".join(
        f"{k} {v[0]}/{v[1]}/{v[2]}" for k, v in result["worker_rss_mb_start_middle_end"].items()))  # fmt: skip
    if "redis_outage" in result:
        o = result["redis_outage"]
        print(f"  Redis down {o['outage_seconds']} s: {o['answers_during_outage']} answers meanwhile; health during "
              f"{o['health_during']} (workers degraded {o['workers_degraded_during']}), after {o['health_after']}; "
              f"every worker on Redis again: {o['every_worker_back_on_redis']} {o['seconds_until_redis_again']}"
              )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=8000, help="per run")
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2, help="per instance")
    parser.add_argument("--rate-every", type=int, default=10, help="every N-th request of a client is a rating")
    parser.add_argument("--outage-seconds", type=float, default=10, help="Redis stopped this long (0: no such run)")
    parser.add_argument("--max-seconds", type=float, default=900, help="stop sending after this long (per run)")
    parser.add_argument("--warmup", type=int, default=400, help="requests before measuring (not counted)")
    args = parser.parse_args()

    pool = questions()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bot-soak-shared-") as scratch:
        chroma = ChromaServer(Path(scratch) / "chroma").start()
        redis = RedisServer(Path(scratch)).start()
        postgres = PostgresServer()
        apps: list[subprocess.Popen[bytes]] = []
        try:
            postgres.start()
            shared = {**os.environ, "BOT_CHROMA_URL": chroma.url, "BOT_REDIS_URL": redis.url,
                      "BOT_DATABASE_URL": postgres.url, "BOT_INDEX_DIR": f"{scratch}/index",
                      "BOT_SIGNING_KEY": secrets.token_urlsafe(32), "BOT_WORKERS": str(args.workers),
                      "BOT_RATE_LIMIT": "1000000/minute", "BOT_DAILY_CAP_PER_ORIGIN": "0", "HF_HUB_OFFLINE": "1",
                      "BOT_HOST": "127.0.0.1", "BOT_DATA_DIR": f"{scratch}/data-index"}  # fmt: skip
            indexed = time.perf_counter()
            build = [sys.executable, "-m", "bot", "index"]
            subprocess.run(build, cwd=ROOT, env=shared, check=True, capture_output=True)
            print(f"index built through the Chroma server in {time.perf_counter() - indexed:.0f} s", flush=True)
            urls, workers, ready = [], {}, []
            for n in range(2):
                port = free_port()
                env = {**shared, "BOT_PORT": str(port), "BOT_DATA_DIR": f"{scratch}/data-{n}"}
                app, ready_s, pids = start_app(env, port, args.workers, log=Path(scratch) / f"app-{n}.log")
                apps.append(app)
                url = f"http://127.0.0.1:{port}"
                urls.append(url)
                workers[url] = pids
                ready.append(round(ready_s, 2))
            instances = Instances(urls, workers, chroma, redis, postgres)
            print(f"2 instances × {args.workers} workers {workers} ready; warming up…", flush=True)
            asyncio.run(traffic(instances, pool, clients=args.clients, total=args.warmup, rate_every=args.rate_every,
                                max_seconds=120, every=10**9))  # fmt: skip
            before = set(stored(shared, postgres.url)["all"])
            runs = [("steady", 0.0)] + ([("redis_outage", args.outage_seconds)] if args.outage_seconds else [])
            for name, outage_seconds in runs:
                procs = [*instances.pids(), *(p.pid for p in (chroma.process,) if p is not None)]
                cpu_before = {pid: cpu_seconds(pid) for pid in procs}
                run = asyncio.run(traffic(instances, pool, clients=args.clients, total=args.requests,
                                          rate_every=args.rate_every, max_seconds=args.max_seconds,
                                          every=max(1, args.requests // 8), outage_seconds=outage_seconds))  # fmt: skip
                run["cpu_s"] = {str(pid): round(cpu_seconds(pid) - c, 1) for pid, c in cpu_before.items()}
                run["load_average"] = [round(x, 2) for x in os.getloadavg()]
                run["stored"] = stored(shared, postgres.url)
                results[name] = figures(run, args.clients, before)
                before = set(run["stored"]["all"])
                report(name, results[name])
            health_now = asyncio.run(health(urls[0]))
            logged = server_errors(Path(scratch))
        finally:
            for app in apps:
                app.terminate()  # SIGTERM: the parent stops its workers gracefully
            for app in apps:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    app.wait(timeout=60)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(app.pid, signal.SIGKILL)
            postgres.stop()
            redis.stop()
            chroma.stop()

    result = {
        "instances": 2,
        "workers_per_instance": args.workers,
        "rate_every": args.rate_every,
        "question_pool": len(pool),
        "first_worker_ready_s": ready,
        "limits_at_the_end": (health_now or {}).get("limits"),
        "server_errors_logged": logged,
        "cpus": os.cpu_count(),
        "runs": results,
    }
    if "redis_outage" in results:
        steady, down = results["steady"], results["redis_outage"]
        result["outage_vs_steady"] = {
            "requests_per_s": round(down["requests_per_s"] / steady["requests_per_s"], 3),
            "p50_chat": round(down["latency_chat"]["p50_ms"] / steady["latency_chat"]["p50_ms"], 3),
            "p95_chat": round(down["latency_chat"]["p95_ms"] / steady["latency_chat"]["p95_ms"], 3),
        }
        ratios = result["outage_vs_steady"]
        print(f"with the outage / steady: requests/s {ratios['requests_per_s']}, answers p50 {ratios['p50_chat']}, "
              f"p95 {ratios['p95_chat']}")  # fmt: skip
    path = write_result("soak_shared", result)
    for line in logged[:10]:
        print(f"  logged: {line}")
    print(f"limits at the end: {result['limits_at_the_end']}; {len(logged)} error line(s) logged  → {path}")


if __name__ == "__main__":
    main()
