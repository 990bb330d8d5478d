"""One HTTP connection to a running coach: headers, TLS, proxies, waiting out 429/503, and plain-words failures.

Every request goes through ``Connection``: ``--header`` values on each, ``--cacert`` (or ``SSL_CERT_FILE``) for
TLS, ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` from the environment (httpx's
``trust_env``). A 429 or 503 is retried after its ``Retry-After`` (doubling from a second when it has none)
while the request's waits add up to no more than ``--max-wait``; past that the run stops. Failures are of two
kinds: what stops the run (``RunStopped``: the address is unreachable, TLS fails, it isn't the coach, it
refuses the suite, a limit never clears), after which every other request stops too; and what fails one case
(``ReplyError``: a timeout, an error reply, a broken stream), which the runner records as that case's crash.
"""

from __future__ import annotations

import email.utils
import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.evaluate.runner import RunStopped
from bot.version import __version__

#: Statuses that mean "not now": retried after their ``Retry-After``, within ``--max-wait``.
RETRIED = frozenset({429, 503})
#: The wait when a 429/503 gives no ``Retry-After``: a second, doubling each time, at most 30 s.
BACKOFF_START, BACKOFF_MAX = 1.0, 30.0
#: What to do about a rate limit that outlasts ``--max-wait``.
LIMIT_HINT = (
    "Give the suite a QA key (one of BOT_QA_KEYS on the server, sent as --header 'Authorization: Bearer <key>'), "
    "lower --concurrency, or raise --max-wait."
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class Unreachable(RunStopped):
    """No connection to the server: a wrong address or port, a server that is down, a proxy that refuses."""


class TlsFailure(RunStopped):
    """The TLS handshake failed: a certificate this machine doesn't trust (``--cacert``), or no HTTPS there."""


class NotTheCoach(RunStopped):
    """Something answers at the address, but not the knee-pain coach."""


class Refused(RunStopped):
    """The server refuses the suite (401, 403): a missing or wrong key, an origin it doesn't allow."""


class LimitNeverClears(RunStopped):
    """A 429 or 503 that ``--max-wait`` does not outlast."""


class ReplyError(Exception):
    """One request got no usable reply (a timeout, an error status, a broken stream): its case crashes."""


@dataclass(frozen=True)
class ServerOptions:
    """Where the coach is and how to reach it; checked here, so a bad option fails before any request.

    Args:
        url: The coach's address, the one serving ``/api/health`` and the chat page (a path prefix is kept).
        headers: ``(name, value)`` sent with every request, e.g. ``Authorization: Bearer <key>``.
        cacert: A PEM file of the CA(s) to trust instead of the system's.
        timeout: Seconds to wait for a connection, and between pieces of a reply.
        max_wait: Seconds one request may wait in all on 429/503 before the run stops.
    """

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    cacert: Path | None = None
    timeout: float = 60.0
    max_wait: float = 300.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"--url {self.url!r} is not an address such as https://coach-staging.gym.example")
        object.__setattr__(self, "url", self.url.strip().rstrip("/"))
        if self.timeout <= 0:
            raise ValueError(f"--timeout must be more than 0 seconds, not {self.timeout:g}")
        if self.max_wait < 0:
            raise ValueError(f"--max-wait must be 0 seconds or more, not {self.max_wait:g}")
        self.verify()  # a bad --cacert fails now

    def verify(self) -> ssl.SSLContext | bool:
        """How TLS certificates are checked: against ``--cacert``, else the default trust (``SSL_CERT_FILE``)."""
        if self.cacert is None:
            return True
        if not self.cacert.is_file():
            raise ValueError(f"--cacert {self.cacert}: no such file")
        try:
            return ssl.create_default_context(cafile=str(self.cacert))
        except (ssl.SSLError, OSError, ValueError) as error:
            raise ValueError(f"--cacert {self.cacert}: not a PEM file of certificates ({error})") from None


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` as ``(name, value)``; the message of a bad one never repeats its value (a secret)."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _HEADER_NAME.fullmatch(name) or not value or not value.isprintable():
        shown = name if _HEADER_NAME.fullmatch(name) else "…"
        raise ValueError(f"--header {shown}: not 'Name: value', e.g. --header 'Authorization: Bearer <key>'")
    return name, value


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` asks for (a number or an HTTP date); ``None`` when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def describe_reply(response: httpx.Response) -> str:
    """A refusal in a few words: ``429 rate_limited: <message>`` from either error shape (``/api``, ``/v1``)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # the OpenAI shape of /v1
            code, message = error.get("code") or error.get("type"), error.get("message")
        else:
            code, message = error, body.get("message")
        if isinstance(code, str):
            return f"{response.status_code} {code}" + (f": {message}" if isinstance(message, str) else "")
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    return f"{response.status_code} ({kind})"


@dataclass(frozen=True)
class Wait:
    """One wait on a 429/503: what the server answered and how long the suite waited."""

    reply: str
    seconds: float


class Connection:
    """The suite's HTTP client for one coach; thread-safe, shared by the concurrent cases.

    Args:
        options: The checked options.
        transport: An httpx transport to use instead of the network (tests: ``httpx.MockTransport``).
        pause: Waits the given seconds, returning ``True`` when the run was stopped meanwhile (tests replace it).
    """

    def __init__(
        self,
        options: ServerOptions,
        *,
        transport: httpx.BaseTransport | None = None,
        pause: Callable[[float], bool] | None = None,
    ) -> None:
        self.options = options
        self.waits: list[Wait] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._reason = ""
        self._pause = pause if pause is not None else self._stopped.wait
        headers = {"User-Agent": f"knee-coach-eval/{__version__}", **dict(options.headers)}
        self._client = httpx.Client(base_url=options.url, headers=headers, verify=options.verify(),
                                    timeout=options.timeout, transport=transport, follow_redirects=False)  # fmt: skip

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------------------

    def get(self, path: str) -> httpx.Response:
        """``GET path`` once, whatever its status (``/api/health`` is read as it is)."""
        return self._send(lambda: self._client.get(path), f"GET {path}")

    def post(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        """``POST body`` as JSON; a 429/503 is waited out, any other status but 200 raises."""
        what, waited, attempt = f"POST {path}", 0.0, 0
        while True:
            response = self._send(lambda: self._client.post(path, json=body), what)
            if response.status_code not in RETRIED:
                self._check(response, what)
                return response
            waited, attempt = self._wait_out(response, what, waited, attempt), attempt + 1

    def lines(self, path: str, body: Mapping[str, Any]) -> Iterator[str]:
        """``POST body`` and yield the reply's lines as they arrive (a server-sent event stream)."""
        what, waited, attempt = f"POST {path}", 0.0, 0
        while True:
            request = self._client.build_request("POST", path, json=body, headers={"Accept": "text/event-stream"})
            response = self._send(partial(self._client.send, request, stream=True), what)
            try:
                if response.status_code in RETRIED:
                    self._guard(response.read, what)
                    waited, attempt = self._wait_out(response, what, waited, attempt), attempt + 1
                    continue
                if response.status_code != 200:
                    self._guard(response.read, what)
                    self._check(response, what)
                yield from self._guarded(response.iter_lines(), what)
                return
            finally:
                response.close()

    # -- what the requests share -----------------------------------------------------------------------

    def stop(self, problem: RunStopped) -> RunStopped:
        """Stop every request of this connection (waits end at once) with ``problem``; returns it to raise."""
        with self._lock:
            if not self._stopped.is_set():
                self._reason = str(problem)
                self._stopped.set()
        return problem

    def wait_summary(self) -> dict[str, Any]:
        """How often and how long the suite waited on 429/503, by reply (for the report's header)."""
        with self._lock:
            waits = list(self.waits)
        by_reply: dict[str, int] = {}
        for wait in waits:
            key = wait.reply.split(":")[0]
            by_reply[key] = by_reply.get(key, 0) + 1
        return {"count": len(waits), "seconds": round(sum(w.seconds for w in waits), 1), "by_reply": by_reply}

    def _send(self, send: Callable[[], httpx.Response], what: str) -> httpx.Response:
        if self._stopped.is_set():
            raise RunStopped(self._reason)
        try:
            return send()
        except httpx.HTTPError as error:
            raise self._problem(error, what) from None

    def _guard(self, read: Callable[[], object], what: str) -> None:
        try:
            read()
        except httpx.HTTPError as error:
            raise self._problem(error, what) from None

    def _guarded(self, lines: Iterator[str], what: str) -> Iterator[str]:
        try:
            yield from lines
        except httpx.HTTPError as error:
            raise self._problem(error, what) from None

    def _problem(self, error: httpx.HTTPError, what: str) -> Exception:
        """What an httpx error means here: the run stops (no connection, TLS), or this reply failed."""
        url = self.options.url
        tls = _ssl_error(error)
        if tls is not None:
            return self.stop(TlsFailure(f"TLS failed with {url}: {_tls_reason(tls)}. {self._tls_hint(tls)}"))
        if isinstance(error, httpx.ProxyError):
            return self.stop(Unreachable(f"The proxy would not connect to {url} ({error}): check HTTPS_PROXY, "
                                         "HTTP_PROXY, ALL_PROXY and NO_PROXY."))  # fmt: skip
        if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
            reason = str(error) or error.__class__.__name__
            return self.stop(Unreachable(f"Can't reach {url} ({reason}): is the server running at that address "
                                         "and port, and is the address right?"))  # fmt: skip
        if isinstance(error, httpx.TimeoutException):
            return ReplyError(f"{what}: no reply within {self.options.timeout:g} s (--timeout)")
        return ReplyError(f"{what}: the connection broke mid-reply ({error.__class__.__name__}: {error})")

    def _tls_hint(self, error: ssl.SSLError) -> str:
        if isinstance(error, ssl.SSLCertVerificationError):
            if self.options.cacert is not None:
                return f"The server's certificate is not signed by a CA in --cacert {self.options.cacert}."
            return "If a private CA signs the server's certificate, pass it with --cacert CA.pem (or SSL_CERT_FILE)."
        return "Does the server speak HTTPS on that port (or is the address http://)?"

    def _check(self, response: httpx.Response, what: str) -> None:
        """Raise what a status other than 200 means: the suite is refused, it's not the coach, or the case failed."""
        status = response.status_code
        if status == 200:
            return
        reply = describe_reply(response)
        if status in {401, 403}:
            raise self.stop(Refused(f"{self.options.url}: {what} answered {reply}. If the server needs a key, "
                                    "pass it with --header 'Authorization: Bearer <key>'."))  # fmt: skip
        if status in {301, 302, 303, 307, 308}:
            where = response.headers.get("location", "elsewhere")
            raise self.stop(NotTheCoach(f"{self.options.url}: {what} redirects to {where}: give that address "
                                        "with --url."))  # fmt: skip
        if status in {404, 405}:
            raise self.stop(NotTheCoach(f"{self.options.url}: {what} answered {reply}: is this the coach's "
                                        "address (the one serving /api/health and the chat page)?"))  # fmt: skip
        raise ReplyError(f"{what} answered {reply}")

    def _wait_out(self, response: httpx.Response, what: str, waited: float, attempt: int) -> float:
        """Wait as the 429/503 asks and return the request's total wait; stop the run past ``--max-wait``."""
        reply = describe_reply(response)
        asked = retry_after(response.headers.get("retry-after"))
        delay = asked if asked is not None else min(BACKOFF_START * 2**attempt, BACKOFF_MAX)
        if waited + delay > self.options.max_wait:
            so_far = f" after waiting {waited:.0f} s" if waited else ""
            hint = LIMIT_HINT if response.status_code == 429 else "Check the server's health and logs."
            raise self.stop(LimitNeverClears(
                f"{self.options.url}: {what} answered {reply}{so_far} and asks to wait {delay:.0f} s more, past "
                f"--max-wait {self.options.max_wait:g} s. {hint}"
            ))  # fmt: skip
        with self._lock:
            self.waits.append(Wait(reply, delay))
        if self._pause(delay):
            raise RunStopped(self._reason)
        return waited + delay


def _ssl_error(error: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind an httpx error, if any (httpx and httpcore chain the original)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _tls_reason(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {getattr(error, 'verify_message', None) or error}"
    return str(getattr(error, "reason", None) or error)
