"""The coach's public API as a remote eval run sees it, without the engine: canned answers and scripted refusals.

``FakeCoach.transport()`` serves it to an httpx client in process (``httpx.MockTransport``); ``LoopbackCoach``
serves the same on a loopback port (plain HTTP, TLS, or as the proxy every request goes through), for the
command line in a subprocess.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.contract import Answer, Citation, Passage, Status
from bot.policy import DISCLAIMER

QUOTE = "Position your feet about shoulder-width apart"
HEALTH = {"status": "ready", "ready": True, "version": "0.1.0+index.7", "index_version": 7, "passages": 36,
          "store": "embedded chroma (one process)", "composer": "extractive", "worker": 4242,
          "page": "ready"}  # fmt: skip


def canned_answer(question: str, history: list[dict[str, str]]) -> Answer:
    """An answer that passes an ``expect: answer`` case needing 'shoulder-width'; it says how long the history was."""
    passage = f"{QUOTE} on the platform."
    text = f"{QUOTE} [1] (turn {len(history) // 2 + 1}).\n\n---\n\n{DISCLAIMER}"
    citation = Citation(n=1, chunk_id="c1", doc_id="d1", title="Leg press", section="Feet", text=passage,
                        quote=QUOTE, start=0, end=len(QUOTE))  # fmt: skip
    return Answer(question=question, status=Status.answered, answer=text, disclaimer=DISCLAIMER,
                  citations=[citation], passages=[Passage(chunk_id="c1", doc_id="d1", section="Feet", text=passage,
                                                          score=0.9, start=0, end=len(passage))],
                  timings_ms={"retrieve": 3.0, "total": 5.0})  # fmt: skip


def refusal(status: int, code: str, *, retry_after: str | None = None, openai: bool = False) -> httpx.Response:
    """An error reply in the shape of ``/api`` (or ``/v1``)."""
    body: dict[str, Any] = {"error": code, "message": f"plain words about {code}"}
    if openai:
        body = {"error": {"message": f"plain words about {code}", "type": "requests", "param": None, "code": code}}
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, json=body, headers=headers)


def _sse(events: list[tuple[str | None, str]]) -> bytes:
    blocks = [(f"event: {name}\n" if name else "") + f"data: {data}\n\n" for name, data in events]
    return (": ping\n\n" + "".join(blocks)).encode()


@dataclass
class FakeCoach:
    """Answers like the coach; ``script`` replies (e.g. 429s) are served first to the chat routes, in order."""

    health: dict[str, Any] = field(default_factory=lambda: dict(HEALTH))
    health_status: int = 200
    script: list[httpx.Response] = field(default_factory=list)
    answer: Callable[[str, list[dict[str, str]]], Answer] = canned_answer
    #: Rewrites a streamed reply's pieces (a proxy that changes the stream).
    pieces: Callable[[str], list[str]] = lambda text: [text[:10], text[10:]]
    requests: list[httpx.Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            path = request.url.path
            if path == "/api/health":
                return httpx.Response(self.health_status, json=self.health)
            if path not in {"/api/chat", "/api/chat/stream", "/v1/chat/completions"}:
                return httpx.Response(404, json={"error": "not_found", "message": "no such page"})
            if self.script:
                return self.script.pop(0)
        body = json.loads(request.content)
        if path == "/v1/chat/completions":
            *history, last = body["messages"]
            return self._completion(self.answer(last["content"], history), stream=body.get("stream", False))
        answer = self.answer(body["message"], body.get("history", []))
        if path == "/api/chat":
            return httpx.Response(200, content=answer.model_dump_json(), headers={"Content-Type": "application/json"})
        events: list[tuple[str | None, str]] = [("delta", json.dumps({"text": p})) for p in self.pieces(answer.answer)]
        events.append(("answer", answer.model_dump_json()))
        return httpx.Response(200, content=_sse(events), headers={"Content-Type": "text/event-stream"})

    def _completion(self, answer: Answer, *, stream: bool) -> httpx.Response:
        coach = {"status": answer.status.value, "reason": answer.reason, "disclaimer": answer.disclaimer,
                 "citations": [c.model_dump() for c in answer.citations],
                 "passages": [p.model_dump() for p in answer.passages]}  # fmt: skip
        if not stream:
            body = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}],
                "coach": coach}  # fmt: skip
            return httpx.Response(200, json=body)
        chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        chunks += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in self.pieces(answer.answer)]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "coach": coach})
        events: list[tuple[str | None, str]] = [(None, json.dumps(c)) for c in chunks] + [(None, "[DONE]")]
        return httpx.Response(200, content=_sse(events), headers={"Content-Type": "text/event-stream"})

    def asked(self, path: str) -> list[dict[str, Any]]:
        """The JSON bodies sent to ``path``."""
        return [json.loads(r.content) for r in self.requests if r.url.path == path]


class LoopbackCoach:
    """``FakeCoach`` on a loopback port (TLS with ``tls``); as a proxy it takes any absolute URL as its own."""

    def __init__(self, coach: FakeCoach, *, tls: ssl.SSLContext | None = None) -> None:
        self.coach = coach
        self.targets: list[str] = []  # the request targets as received (absolute when it serves as a proxy)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                outer.targets.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                url = self.path if self.path.startswith("http") else f"http://127.0.0.1{self.path}"
                request = httpx.Request(self.command, url, headers=dict(self.headers), content=self.rfile.read(length))
                response = outer.coach.handle(request)
                response.read()
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackCoach:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)
