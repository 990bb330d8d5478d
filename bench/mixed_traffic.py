"""Mixed traffic with hostile input: server errors, replies without the disclaimer, and memory, at 32 clients.

Starts the real server (``python app.py``, the real engine and chat page) on a free loopback port with its
limits lifted, warms it up, then sends ``--requests`` requests from ``--clients`` closed-loop clients: 45 %
questions on ``/api/chat``, 20 % on ``/api/chat/stream``, 15 % the chat page (``/``, ``/config``), 10 % ratings
of answers just given (``/api/feedback`` with their signed ids), and 10 % hostile requests from the corpus
(``tests/security/hostile_inputs.jsonl``: wrong content types, malformed JSON, bad UTF-8/UTF-16, lone
surrogates, RTL and zero-width characters, deep nesting, oversize bodies, injections, markup). Counts server
errors (5xx other than the refusals that stand in for an answer, and broken connections), every reply that
stands for an answer without the medical disclaimer, and the server's RSS every 500 requests. Loopback only,
bounded by ``--max-seconds``. Run: ``python -m bench.mixed_traffic`` (``make bench-mixed``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from typing import Any

import aiohttp
import httpx

from bench.common import percentile, summary, write_result
from bench.hostile import Hostile, load, page_fn_indices
from bench.http_load import questions, rss_mb, start_server
from bench.servers import free_port
from bot.policy import DISCLAIMER

#: The mix, per 20 requests: what each slot sends.
MIX = ["chat"] * 9 + ["stream"] * 4 + ["page"] * 3 + ["feedback"] * 2 + ["hostile"] * 2


def _stream_answer(text: str) -> dict[str, Any] | None:
    """The ``answer`` event's data of a server-sent-event stream (or the ``error`` event's), if any."""
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if lines.get("event") in {"answer", "error"}:
            return {"event": lines["event"], **json.loads(lines.get("data", "{}"))}
    return None


class Traffic:
    """The clients' shared state: what was sent, what came back, and the answers that can be rated."""

    def __init__(self, url: str, pool: list[str], hostile: list[Hostile]) -> None:
        self.url, self.pool, self.hostile = url, pool, hostile
        self.sent = 0
        self.statuses: Counter[str] = Counter()
        self.server_errors: Counter[str] = Counter()
        self.without_disclaimer: list[str] = []
        self.latencies: list[float] = []
        self.answers: list[dict[str, Any]] = []

    def _answer(self, kind: str, status: int, body: dict[str, Any] | None) -> None:
        """Check a reply that stands for an answer: it, or the refusal in its place, carries the disclaimer."""
        if body is None:
            self.without_disclaimer.append(f"{kind} {status}: no body")
        elif "answer" in body and isinstance(body["answer"], str):
            if not body["answer"].endswith(DISCLAIMER):
                self.without_disclaimer.append(f"{kind} {status}: {body['answer'][-80:]!r}")
            elif kind == "chat" and body.get("answer_id"):
                self.answers.append(body)
                del self.answers[:-50]
        elif status >= 500 and body.get("disclaimer") != DISCLAIMER:
            self.without_disclaimer.append(f"{kind} {status}: {body}")

    async def one(self, http: aiohttp.ClientSession, n: int) -> None:
        kind = MIX[n % len(MIX)]
        question = self.pool[n % len(self.pool)]
        began = time.perf_counter()
        try:
            if kind == "chat":
                async with http.post(f"{self.url}/api/chat", json={"message": question}) as response:
                    status, body = response.status, await response.json(content_type=None)
                    self._answer(kind, status, body)
            elif kind == "stream":
                async with http.post(f"{self.url}/api/chat/stream", json={"message": question}) as response:
                    status = response.status
                    text = await response.text()
                    event = _stream_answer(text) if status == 200 else json.loads(text)
                    self._answer(kind, status, event)
            elif kind == "page":
                async with http.get(f"{self.url}{'/' if n % 2 else '/config'}") as response:
                    status = response.status
                    await response.read()
            elif kind == "feedback" and self.answers:
                answer = self.answers[n % len(self.answers)]
                rating = {"rating": "down", "comment": f"mixed traffic {n}", "answer": answer}
                async with http.post(f"{self.url}/api/feedback", json=rating) as response:
                    status = response.status
                    await response.read()
            else:
                kind = "hostile"
                request = self.hostile[n % len(self.hostile)]
                skip = [] if "Content-Type" in request.headers else ["Content-Type"]
                async with http.post(f"{self.url}{request.path}", data=request.body, headers=request.headers,
                                     skip_auto_headers=skip) as response:  # fmt: skip
                    status = response.status
                    raw = await response.read()
                    if request.path == "/api/chat" and status == 200:
                        self._answer(f"hostile {request.kind}: {request.note}", status, json.loads(raw))
                    if request.path == "/api/chat/stream" and status == 200:
                        self._answer(f"hostile {request.kind}: {request.note}", status, _stream_answer(raw.decode()))
            self.statuses[f"{kind} {status}"] += 1
            if status >= 500 and not (status == 503 and kind in {"chat", "stream"}):
                self.server_errors[f"{kind} {status}"] += 1
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            self.server_errors[f"{kind} {type(error).__name__}"] += 1
        self.latencies.append((time.perf_counter() - began) * 1000)


async def run(traffic: Traffic, *, clients: int, total: int, max_seconds: float, pid: int, every: int) -> dict:
    samples = [{"requests": 0, "rss_mb": rss_mb(pid)}]
    deadline = time.perf_counter() + max_seconds

    async def client(http: aiohttp.ClientSession) -> None:
        while traffic.sent < total and time.perf_counter() < deadline:
            n = traffic.sent
            traffic.sent += 1
            await traffic.one(http, n)
            if len(traffic.latencies) % every == 0:
                samples.append({"requests": len(traffic.latencies), "rss_mb": rss_mb(pid)})

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - began
    if samples[-1]["requests"] != len(traffic.latencies):
        samples.append({"requests": len(traffic.latencies), "rss_mb": rss_mb(pid)})
    return {"seconds": seconds, "memory": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument(
        "--warmup",
        type=int,
        default=2000,
        help="requests before measuring (not counted): enough to fill the engine's caches",
    )
    parser.add_argument("--max-seconds", type=float, default=600, help="stop sending after this long")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        env = {**os.environ, "BOT_DATA_DIR": data_dir, "BOT_RATE_LIMIT": "off", "BOT_DAILY_CAP_PER_ORIGIN": "0"}
        server, ready_s, page_s = start_server(port, env)
        url = f"http://127.0.0.1:{port}"
        try:
            fn = page_fn_indices(httpx.get(f"{url}/config", timeout=10).json())
            hostile = [request.for_page(fn) for request in load()]
            print(f"server ready in {ready_s:.1f} s, page in {page_s:.1f} s; warming up ({args.warmup})…", flush=True)
            warm = Traffic(url, questions(), hostile)
            asyncio.run(run(warm, clients=args.clients, total=args.warmup, max_seconds=120, pid=server.pid,
                            every=10_000))  # fmt: skip
            traffic = Traffic(url, questions(), hostile)
            traffic.answers = warm.answers
            measured = asyncio.run(run(traffic, clients=args.clients, total=args.requests, max_seconds=args.max_seconds,
                                       pid=server.pid, every=500))  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=60)

    latencies = traffic.latencies
    rss = [(sample["requests"], sample["rss_mb"]) for sample in measured["memory"]]
    result = {
        "clients": args.clients,
        "requests": len(latencies),
        "mix": dict(Counter(MIX)),
        "hostile_corpus": len(hostile),
        "seconds": round(measured["seconds"], 2),
        "requests_per_s": round(len(latencies) / measured["seconds"], 1),
        "latency": summary(latencies) | {"p99_ms": round(percentile(latencies, 99), 3)},
        "statuses": dict(sorted(traffic.statuses.items())),
        "server_errors": dict(traffic.server_errors),
        "replies_without_disclaimer": traffic.without_disclaimer[:20],
        "replies_without_disclaimer_count": len(traffic.without_disclaimer),
        "rss_mb": rss,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    path = write_result("mixed_traffic", result)
    at = dict(rss)
    picks = [at.get(0), at.get(args.requests // 2), at.get(args.requests)]
    print(f"{len(latencies)} requests ({args.clients} clients, 10 % hostile) in {measured['seconds']:.1f} s: "
          f"{result['requests_per_s']} requests/s, p50 {result['latency']['p50_ms']:.0f} ms, "
          f"p95 {result['latency']['p95_ms']:.0f} ms")  # fmt: skip
    errors, missing = traffic.server_errors, traffic.without_disclaimer
    print(f"server errors: {sum(errors.values())} {dict(errors) or ''}; "
          f"replies without the disclaimer: {len(missing)} {missing[:3] or ''}")  # fmt: skip
    print(f"server RSS (MB) at 0 / {args.requests // 2} / {args.requests} requests: {picks}; all: {rss}")
    print(f"statuses: {result['statuses']}  → {path}")


if __name__ == "__main__":
    main()
