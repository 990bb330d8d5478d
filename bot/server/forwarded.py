"""Who is asking, and by which name: the client's address, the scheme and the host, believed only from the socket.

A reverse proxy in front of the server says who its client was (``X-Forwarded-For``), which scheme and host
that client used (``X-Forwarded-Proto``, ``X-Forwarded-Host``). Anyone can send those headers, so they are
believed only from the addresses in ``BOT_TRUSTED_PROXIES`` (default: none). ``Forwarded`` — the outermost
layer after the request context — resolves them once into the request itself (``scope["client"]``,
``scope["scheme"]`` and the ``Host`` header) and removes every forwarding header, so nothing further in (our
routes, Gradio's root URL) can read an untrusted one. It also refuses a ``Host`` not in ``BOT_ALLOWED_HOSTS``
(400), which stops a DNS-rebinding page from talking to the server under its own name.

``client_key`` turns an address into what rate limits count: the address, or its /64 for IPv6 (one
subscriber's whole network).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from bot import policy
from bot.server.errors import json_error

log = logging.getLogger("bot.server.forwarded")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Headers that say something about the client or the URL it used: believed from trusted proxies, never kept.
FORWARDING_HEADERS = frozenset(
    {b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port", b"x-forwarded-prefix",
     b"x-forwarded-server", b"forwarded", b"x-real-ip", b"x-gradio-server", b"x-original-host"}
)  # fmt: skip


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def client_key(address: str) -> str:
    """What rate limits count for ``address``: an IPv4 address as is, an IPv6 address by its /64."""
    found = _address(address)
    if isinstance(found, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((found, 64), strict=False))
    return str(found) if found is not None else address


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without its port, lower case (IPv6 without brackets)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(name: str, patterns: Sequence[str]) -> bool:
    """Whether ``name`` matches one of ``patterns`` (exact, ``*.domain`` for its subdomains, or ``*``)."""
    return any(p == "*" or name == p or (p.startswith("*.") and name.endswith(p[1:])) for p in patterns)


class Forwarded:
    """Resolve the client, scheme and host (believing only trusted proxies), drop forwarding headers, check Host."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: Sequence[str], allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.proxies: list[IPNetwork] = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self.allowed_hosts = list(allowed_hosts)

    def trusted(self, address: str | None) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        found = _address(address) if address else None
        return found is not None and any(found in network for network in self.proxies)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client: the right-most ``X-Forwarded-For`` hop that isn't a trusted proxy (``peer`` is one)."""
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
        client = peer
        for hop in reversed(hops):
            found = _address(hop)
            if found is None:  # nothing further left of a hop that isn't an address can be believed
                break
            client = str(found)
            if not self.trusted(client):
                break
        return client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Resolve and clean the request, or refuse a host not allowed."""
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        peer = scope["client"][0] if scope.get("client") else None
        host = headers.get("host")
        if peer is not None and self.proxies and self.trusted(peer):
            port = scope["client"][1]
            scope["client"] = (self.client(peer, headers.getlist("x-forwarded-for")), port)
            proto = headers.getlist("x-forwarded-proto")
            if proto and proto[-1].split(",")[-1].strip().lower() in {"http", "https"}:
                scheme = proto[-1].split(",")[-1].strip().lower()
                scope["scheme"] = scheme if scope["type"] == "http" else {"http": "ws", "https": "wss"}[scheme]
            forwarded_host = headers.getlist("x-forwarded-host")
            if forwarded_host and forwarded_host[-1].split(",")[-1].strip():
                host = forwarded_host[-1].split(",")[-1].strip()
        kept = [(name, value) for name, value in scope["headers"] if name not in FORWARDING_HEADERS and name != b"host"]
        if host is not None:
            kept.append((b"host", host.encode("latin-1")))
        scope["headers"] = kept
        if host is not None and not host_allowed(host_name(host), self.allowed_hosts):
            log.info("refused a request for host %r", host[:100])
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await json_error(400, "host_not_allowed", policy.HOST_NOT_ALLOWED)(scope, receive, send)
            return
        await self.app(scope, receive, send)
