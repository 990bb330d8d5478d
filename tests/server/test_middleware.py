"""The layers around every request, over a stand-in app: origin policy, body limit, request context."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot import policy
from bot.server import errors
from bot.server.middleware import BodyLimit, OriginPolicy, RequestContext, embedding_site

GYM = "https://gym.example"
LIMIT = 100


def stand_in() -> FastAPI:
    """An app with the server's error handlers and layers, whose routes say what reached them."""
    app = FastAPI(exception_handlers=errors.HANDLERS)

    @app.post("/api/echo")
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"bytes": len(await request.body()), "site": embedding_site(request.scope)})

    @app.post("/page/upload")
    async def upload(request: Request) -> JSONResponse:
        return JSONResponse({"bytes": len(await request.body())})

    @app.get("/page")
    def page() -> PlainTextResponse:  # Gradio echoes any origin back; the policy must not let that through
        return PlainTextResponse("page", headers={"Access-Control-Allow-Origin": "*"})

    @app.websocket("/page/socket")
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app.add_middleware(BodyLimit, max_body_bytes=LIMIT)
    app.add_middleware(OriginPolicy, allowed_origins=[GYM])
    app.add_middleware(RequestContext)
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(stand_in()) as test_client:
        yield test_client


def chunks(total: int) -> Iterator[bytes]:
    """A body sent without its length, ten bytes at a time."""
    for _ in range(total // 10):
        yield b"x" * 10


@pytest.mark.parametrize(
    ("body", "headers", "refused"),
    [
        (b"x" * LIMIT, {}, False),  # exactly the limit
        (b"x" * (LIMIT + 1), {}, True),  # declared too long
        (chunks(LIMIT + 10), {}, True),  # too long as it arrives
        (b"{}", {"content-length": "2x"}, True),  # a length that isn't a number
    ],
)
def test_api_bodies_over_the_limit_are_refused_with_a_json_413(client, body, headers, refused: bool) -> None:
    response = client.post("/api/echo", content=body, headers=headers)
    if refused:
        assert response.status_code == 413
        assert response.json() == {"error": "request_too_large", "message": policy.too_large(LIMIT)}
    else:
        assert response.status_code == 200 and response.json()["bytes"] == LIMIT


def test_the_body_limit_applies_to_the_pages_routes_too(client: TestClient) -> None:
    response = client.post("/page/upload", content=b"x" * (LIMIT * 10))
    assert response.status_code == 413 and response.json()["error"] == "request_too_large"


@pytest.mark.parametrize(
    ("origin", "same"),
    [
        ("http://testserver", True),
        ("http://testserver:80", True),  # the default port, spelled out
        ("https://testserver", False),  # another scheme is another origin
        ("http://testserver:8080", False),
        ("http://testserver.evil.example", False),
        ("null", False),
    ],
)
def test_the_same_origin_is_the_requests_own_scheme_host_and_port(client: TestClient, origin: str, same: bool) -> None:
    response = client.post("/api/echo", headers={"Origin": origin})
    assert response.status_code == (200 if same else 403)


def test_a_listed_site_gets_its_own_origin_back_never_an_inner_wildcard(client: TestClient) -> None:
    listed = client.get("/page", headers={"Origin": GYM})
    same = client.get("/page", headers={"Origin": "http://testserver"})
    assert listed.headers["access-control-allow-origin"] == GYM
    assert "access-control-allow-origin" not in same.headers


def test_only_a_listed_sites_requests_count_against_its_cap(client: TestClient) -> None:
    listed = client.post("/api/echo", headers={"Origin": GYM}).json()
    own = client.post("/api/echo", headers={"Origin": "http://testserver"}).json()
    assert (listed["site"], own["site"]) == (GYM, None)


def test_every_response_carries_the_security_headers_and_an_id(client: TestClient) -> None:
    for response in (client.get("/page"), client.post("/api/echo", headers={"Origin": "https://evil.example"})):
        assert response.headers["content-security-policy"] == f"frame-ancestors 'self' {GYM}"
        assert response.headers["x-content-type-options"] == "nosniff" and response.headers["vary"] == "Origin"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert response.headers["x-request-id"]


def test_a_site_not_on_the_list_is_refused_before_anything_runs(client: TestClient) -> None:
    response = client.post("/api/echo", content=b"x" * (LIMIT * 2), headers={"Origin": "https://evil.example"})
    assert response.status_code == 403  # refused for who it is, before its size is looked at
    assert response.json() == {"error": "origin_not_allowed", "message": policy.ORIGIN_NOT_ALLOWED}


def test_a_websocket_from_a_site_not_on_the_list_is_closed(client: TestClient) -> None:
    with client.websocket_connect("/page/socket") as socket:
        assert socket.receive_text() == "hello"
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/page/socket", headers={"Origin": "https://evil.example"}),
    ):
        pass
    assert closed.value.code == 1008
