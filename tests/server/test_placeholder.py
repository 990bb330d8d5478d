"""``/`` while the chat page is built: the "starting up" page, then the page, and what health says of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from bot import policy
from bot.server import errors
from bot.server.placeholder import PageSlot
from bot.server.services import Services
from bot.settings import Settings


@pytest.fixture
def slot() -> PageSlot:
    return PageSlot()


@pytest.fixture
def client(slot: PageSlot) -> Iterator[TestClient]:
    app = FastAPI(exception_handlers=errors.HANDLERS)
    app.mount("/", slot)
    with TestClient(app) as test_client:
        yield test_client


async def the_page(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse(f"the page at {scope['path']}")(scope, receive, send)


def test_while_the_page_is_built_the_root_is_a_page_that_reloads_itself(client: TestClient) -> None:
    response = client.get("/?embed=1")
    assert response.status_code == 503 and response.headers["content-type"] == "text/html; charset=utf-8"
    assert (response.headers["retry-after"], response.headers["cache-control"]) == ("1", "no-store")
    assert policy.PAGE_STARTING in response.text and '<meta http-equiv="refresh" content="1">' in response.text
    assert client.head("/").status_code == 503


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/config", 404, "not_found"),  # the page's own paths are not there yet
        ("POST", "/", 405, "method_not_allowed"),  # the placeholder is for reading
    ],
)
def test_anything_else_meanwhile_is_the_apis_json_error(client: TestClient, method, path, status, code) -> None:
    response = client.request(method, path)
    assert response.status_code == status and response.json()["error"] == code


def test_a_page_that_could_not_be_built_is_said_unavailable_without_reloading(client, slot: PageSlot) -> None:
    slot.failed()
    response = client.get("/")
    assert response.status_code == 503 and policy.PAGE_UNAVAILABLE in response.text and "refresh" not in response.text


def test_once_served_the_pages_own_paths_are_the_pages_and_nothing_else(client: TestClient, slot: PageSlot) -> None:
    slot.serve(the_page, events={}, apis={})
    assert client.get("/").text == "the page at /" and client.get("/config").text == "the page at /config"
    assert client.get("/assets/index.js").text == "the page at /assets/index.js"
    for path in ("/gradio_api/upload", "/gradio_api/file=/etc/passwd", "/gradio_api/proxy=http://x", "/monitoring",
                 "/gradio_api/mcp/sse", "/login", "/manifest.json", "/gradio_api/startup-events"):  # fmt: skip
        response = client.post(path) if path == "/gradio_api/upload" else client.get(path)
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    refused = client.post("/config")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    assert refused.json()["error"] == "method_not_allowed"


def test_health_reports_the_page_as_its_slot_stands(tmp_path) -> None:
    services = Services(Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data"))
    states = [services.page]  # an app without a page
    built, broken = PageSlot(), PageSlot()
    services.page_slot = built
    states.append(services.page)
    built.serve(the_page, events={}, apis={})
    states.append(services.page)
    services.page_slot = broken
    broken.failed()
    assert [*states, services.page] == ["off", "starting", "ready", "failed"]


async def gradios_error(scope: Scope, receive: Receive, send: Send) -> None:
    from starlette.responses import JSONResponse

    status, detail = (400, "Session hash not found.") if scope["path"].endswith("join") else (404, "Not Found")
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


def test_the_pages_own_errors_get_the_projects_shape_and_keep_gradios_detail(client: TestClient, slot: PageSlot):
    slot.serve(gradios_error, events={}, apis={})
    join = client.post("/gradio_api/queue/join", json={})
    missing = client.get("/assets/no-such-file.js")
    assert join.status_code == 400 and join.json() == {"error": "bad_request", "message": "Session hash not found.",
                                                       "detail": "Session hash not found."}  # fmt: skip
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert int(join.headers["content-length"]) == len(join.content)
