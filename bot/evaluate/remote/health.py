"""What the suite learns from ``GET /api/health`` before asking: the coach? ready? answering from what?

The health body gives the version, index version, passages, composer, store, worker and page.

A server that is still starting (or has lost its store) answers 503 with the same body; it is polled, once a
second, for up to ``--max-wait``. Anything that isn't the coach's health body stops the run, saying what
answered instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bot.evaluate.remote.connection import (
    Connection,
    LimitNeverClears,
    NotTheCoach,
    Refused,
    ReplyError,
    describe_reply,
)
from bot.version import __version__

HEALTH_PATH = "/api/health"
#: How often a server that isn't ready yet is asked again.
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class ServerHealth:
    """The server's ``/api/health`` as the report's header records it (fields it doesn't report are ``None``)."""

    url: str
    status: str
    ready: bool
    version: str | None = None
    index_version: int | None = None
    passages: int | None = None
    store: str | None = None
    composer: str | None = None
    worker: int | None = None
    page: str | None = None

    @classmethod
    def from_body(cls, url: str, body: dict[str, Any]) -> ServerHealth:
        """The fields of a health body that have the expected types (a newer server may add others)."""
        kinds = {"version": str, "index_version": int, "passages": int, "store": str, "composer": str,
                 "worker": int, "page": str}  # fmt: skip
        known = {name: body.get(name) for name, kind in kinds.items() if isinstance(body.get(name), kind)}
        return cls(url=url, status=str(body["status"]), ready=bool(body["ready"]), **known)

    def to_dict(self) -> dict[str, Any]:
        """The health as JSON-ready data."""
        return asdict(self)


def _is_health(body: object) -> bool:
    return isinstance(body, dict) and isinstance(body.get("status"), str) and isinstance(body.get("ready"), bool)


def read_health(connection: Connection) -> tuple[int, ServerHealth]:
    """One ``GET /api/health``: its status and body, or the run stops saying why it isn't the coach's."""
    url = connection.options.url
    try:
        response = connection.get(HEALTH_PATH)
    except ReplyError as error:  # it answered, but nothing an HTTP client can read as a reply
        raise connection.stop(NotTheCoach(f"{url} is not the knee-pain coach: {error}.")) from None
    if response.status_code in {401, 403}:
        raise connection.stop(Refused(f"{url}: GET {HEALTH_PATH} answered {describe_reply(response)}: pass the "
                                      "header it needs with --header 'Name: value'."))  # fmt: skip
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if response.status_code not in {200, 503} or not _is_health(body):
        where = response.headers.get("location")
        hint = f" (it redirects to {where}: give that address with --url)" if where else ""
        raise connection.stop(NotTheCoach(
            f"{url} is not the knee-pain coach: GET {HEALTH_PATH} answered {describe_reply(response)}, not the "
            f"coach's health{hint}. Give the address the chat page is served from."
        ))  # fmt: skip
    assert isinstance(body, dict)
    return response.status_code, ServerHealth.from_body(url, body)


def check_server(
    connection: Connection,
    *,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], object] = time.sleep,
) -> ServerHealth:
    """The server's health once it is ready, waiting up to ``--max-wait`` while it starts; else the run stops."""
    started = clock()
    while True:
        status, health = read_health(connection)
        if status == 200 and health.ready:
            return health
        waited = clock() - started
        if waited + POLL_SECONDS > connection.options.max_wait:
            raise connection.stop(LimitNeverClears(
                f"{connection.options.url} is not ready after {waited:.0f} s (health: {health.status}), past "
                f"--max-wait {connection.options.max_wait:g} s. Check the server's logs."
            ))  # fmt: skip
        pause(POLL_SECONDS)


def version_warning(health: ServerHealth, local: str = __version__) -> str | None:
    """A warning when the server's code version isn't this checkout's (the index build after ``+`` may differ)."""
    if health.version is None:
        return f"The server does not report its version; this checkout is {local}."
    served = health.version.split("+", 1)[0]
    if served != local:
        return (f"The server runs version {health.version}, this checkout is {local}: its answers may differ "
                "from an in-process run of this checkout.")  # fmt: skip
    return None
