"""Who is asking and by which name: believed from the socket, or from a trusted proxy only (``Forwarded``)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from bot.server import errors
from bot.server.forwarded import Forwarded, client_key, host_allowed, host_name

PROXY = "10.0.0.2"


def seen(trusted: list[str], peer: str, headers: dict[str, str]) -> dict:
    """What a route behind ``Forwarded`` sees of a request from ``peer`` with ``headers``."""
    app = FastAPI(exception_handlers=errors.HANDLERS)

    @app.get("/who")
    def who(request: Request) -> dict:
        forwarded = {k: v for k, v in request.headers.items() if k.startswith("x-") or k == "forwarded"}
        return {"client": request.client.host if request.client else None, "url": str(request.url),
                "forwarded": forwarded}  # fmt: skip

    app.add_middleware(Forwarded, trusted_proxies=trusted, allowed_hosts=["coach.example", "testserver"])
    with TestClient(app, client=(peer, 50000)) as client:
        response = client.get("/who", headers=headers)
    return response.json() if response.status_code == 200 else {"status": response.status_code, **response.json()}


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy: its header is ignored
        (PROXY, "198.51.100.1", "198.51.100.1"),
        (PROXY, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own forged hop is left of the proxy's
        (PROXY, "198.51.100.1, 10.0.0.3", "198.51.100.1"),  # two proxies of ours: right-most untrusted
        (PROXY, "not-an-ip, 198.51.100.1", "198.51.100.1"),
        (PROXY, "198.51.100.1, garbage", PROXY),  # nothing left of junk is believed
        (PROXY, "", PROXY),
        (PROXY, "[2001:db8::1]:4711", "2001:db8::1"),
    ],
)
def test_the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy(peer, forwarded_for, client) -> None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    assert seen(["10.0.0.0/24"], peer, headers)["client"] == client


def test_no_forwarding_header_reaches_the_app_whoever_sent_it() -> None:
    forged = {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
              "Forwarded": "for=1.2.3.4", "X-Real-IP": "1.2.3.4", "X-Gradio-Server": "http://evil.example"}  # fmt: skip
    for peer in ("203.0.113.5", PROXY):
        result = seen([PROXY] if peer == PROXY else [], peer, {k: v for k, v in forged.items() if "Host" not in k})
        assert result["forwarded"] == {}
    untrusted = seen([], "203.0.113.5", forged)
    assert untrusted["url"] == "http://testserver/who"  # the socket's scheme and the Host header, not the forged ones


def test_a_trusted_proxy_names_the_scheme_and_host_the_visitor_used() -> None:
    result = seen([PROXY], PROXY, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "coach.example"})
    assert result["url"] == "https://coach.example/who"


@pytest.mark.parametrize("host", ["evil.example", "coach.example.evil.example", "127.0.0.2"])
def test_a_host_the_server_does_not_answer_to_is_a_json_400(host: str) -> None:
    result = seen([], "203.0.113.5", {"Host": host})
    assert result == {"status": 400, "error": "host_not_allowed", "message": result["message"]}


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # an IPv6 subscriber gets a /64: one key for all of it
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.5", "203.0.113.5"),  # IPv4 mapped into IPv6 is the IPv4 client
        ("testclient", "testclient"),
    ],
)
def test_rate_limits_count_ipv4_addresses_and_ipv6_networks(address: str, key: str) -> None:
    assert client_key(address) == key


@pytest.mark.parametrize(
    ("header", "name"), [("Coach.Example:8443", "coach.example"), ("[::1]:7860", "::1"), ("::1", "::1"), ("x", "x")]
)
def test_the_host_name_is_read_without_its_port(header: str, name: str) -> None:
    assert host_name(header) == name


def test_host_patterns_are_exact_or_subdomains_or_anything() -> None:
    assert host_allowed("www.gym.example", ["*.gym.example"]) and not host_allowed(
        "gym.example.evil", ["*.gym.example"]
    )
    assert host_allowed("anything", ["*"]) and not host_allowed("evilgym.example", ["*.gym.example"])
