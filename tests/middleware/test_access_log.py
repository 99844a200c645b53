from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from fastapi import Depends, FastAPI, Response
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis import (
    ChassisSettings,
    ConfigurationError,
    LoggingSettings,
    ProxySettings,
    build_app,
)
from fastapi_chassis._context import subject_var
from fastapi_chassis.middleware.access_log import AccessLogMiddleware
from tests._logs import LogCapture, SetRequestId, capture_logs, rid

JSON = LoggingSettings(json_output=True)


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    yield from capture_logs()


def _app(**settings: Any) -> FastAPI:
    settings.setdefault("logging", JSON)
    app = build_app(ChassisSettings(**settings))
    app.add_middleware(SetRequestId)

    @app.get("/notes/{note_id}")
    async def note(note_id: int) -> dict[str, int]:
        return {"id": note_id}

    @app.get("/unavailable")
    async def unavailable() -> Response:
        return Response(status_code=503)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def test_one_line_per_request_with_route_template_not_raw_path(logs: LogCapture) -> None:
    app = _app()
    logs.configure()
    with TestClient(app) as client:
        response = client.get(
            "/notes/123?secret=1", headers={"x-request-id": rid(1), "user-agent": "curl/8"}
        )
    (line,) = logs.access()
    assert line["event"] == "request"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/notes/{note_id}", 200)
    assert line["bytes"] == len(response.content)
    assert line["user_agent"] == "curl/8"
    assert line["request_id"] == rid(1)
    assert line["client"] == "testclient"
    assert line["level"] == "info"
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert "path" not in line
    assert "123" not in str(line.values())
    assert "secret" not in str(line.values())


def test_control_bytes_in_the_user_agent_are_escaped(logs: LogCapture) -> None:
    app = _app()
    logs.configure()
    with TestClient(app) as client:
        client.get("/notes/1", headers={"user-agent": "ua\x1b[31mRED\rforged"})
    (line,) = logs.access()
    assert line["user_agent"] == "ua\\x1b[31mRED\\rforged"


@pytest.mark.anyio
async def test_repeated_long_and_non_bytes_user_agents_are_logged_the_same_way(
    logs: LogCapture,
) -> None:
    from tests.middleware.asgi import request

    app = _app()
    logs.configure()
    long_agent = b"agent/" + b"x" * 200_000
    agents: list[Any] = [b"curl/8", b"curl/8", long_agent, long_agent + b"y", bytearray(b"raw/1")]
    for agent in agents:
        # A bytearray breaks the ASGI spec (bytes), but a line must still be written.
        await request(app, "/notes/1", headers=[(b"user-agent", agent)])
    logged = [line["user_agent"] for line in logs.access()]
    cut = long_agent[:512].decode()
    assert logged == ["curl/8", "curl/8", cut, cut, "raw/1"]


def test_server_errors_are_logged_at_error_level_and_client_errors_at_info(
    logs: LogCapture,
) -> None:
    app = _app()
    logs.configure()
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/unavailable")
        client.get("/boom")
        client.get("/nowhere/42")
    unavailable, boom, missing = logs.access()
    assert (unavailable["status"], unavailable["level"]) == (503, "error")
    assert (boom["route"], boom["status"], boom["level"]) == ("/boom", 500, "error")
    # No route matched: the template is null and the path is given instead.
    assert (missing["route"], missing["path"], missing["status"]) == (None, "/nowhere/42", 404)
    assert missing["level"] == "info"


def test_health_and_metrics_paths_are_skipped_by_default(logs: LogCapture) -> None:
    app = _app()
    logs.configure()
    with TestClient(app) as client:
        client.get("/healthz")
        client.get("/metrics")
        client.get("/notes/1")
    assert [line["route"] for line in logs.access()] == ["/notes/{note_id}"]


def test_configured_skip_paths_replace_the_defaults(logs: LogCapture) -> None:
    logging_settings = LoggingSettings(json_output=True, access_log_skip_paths=["/notes/1"])
    app = _app(logging=logging_settings)
    logs.configure()
    with TestClient(app) as client:
        client.get("/notes/1")
        client.get("/notes/2")
        client.get("/healthz")
    assert [line.get("route") for line in logs.access()] == ["/notes/{note_id}", "/healthz"]


def test_disabled_access_log_writes_nothing(logs: LogCapture) -> None:
    app = _app(logging=LoggingSettings(json_output=True, access_log=False))
    logs.configure(ChassisSettings(logging=LoggingSettings(json_output=True, access_log=False)))
    with TestClient(app) as client:
        client.get("/notes/1")
    assert logs.access() == []


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _streaming_app(clock: _Clock) -> ASGIApp:
    app = FastAPI()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            clock.now += 1.0  # each chunk takes "a second"
            yield b"chunk"

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(chunks())

    return AccessLogMiddleware(app, clock=clock)


def test_streaming_duration_runs_to_the_last_byte(logs: LogCapture) -> None:
    clock = _Clock()
    logs.configure()
    with TestClient(_streaming_app(clock)) as client:
        assert client.get("/stream").content == b"chunk" * 3
    (line,) = logs.access()
    assert line["duration_ms"] == 3000.0
    assert (line["route"], line["bytes"]) == ("/stream", 15)


def _fused(app: ASGIApp) -> ASGIApp:
    from prometheus_client import CollectorRegistry

    from fastapi_chassis.middleware._core import CoreMiddleware
    from fastapi_chassis.observability.metrics import RequestMetrics

    # With metrics too, so their bookkeeping runs on every hostile path as well.
    metrics = {"metrics": RequestMetrics(CollectorRegistry(), (0.1, 1.0))}
    return CoreMiddleware(app, request_id={}, security_headers={}, access_log={}, metrics=metrics)


@pytest.fixture(params=["alone", "fused"])
def wrap(request: pytest.FixtureRequest) -> Callable[[ASGIApp], ASGIApp]:
    """The access log alone, or inside the fused outer layer `install()` uses by default."""
    return AccessLogMiddleware if request.param == "alone" else _fused


async def _drive(app: ASGIApp, messages: list[Message], *, path: str = "/x") -> list[Message]:
    incoming = iter(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        try:
            return next(incoming)
        except StopIteration:
            await anyio.sleep_forever()
            raise AssertionError("unreachable") from None

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 1),
    }
    await app(scope, receive, send)
    return sent


@pytest.mark.anyio
async def test_client_gone_before_the_response_is_logged_as_499(
    logs: LogCapture, wrap: Callable[[ASGIApp], ASGIApp]
) -> None:
    async def waits_for_body(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "http.disconnect"

    logs.configure()
    await _drive(wrap(waits_for_body), [{"type": "http.disconnect"}])
    (line,) = logs.access()
    assert (line["status"], line["disconnected"], line["level"]) == (499, True, "info")


@pytest.mark.anyio
async def test_cancelled_request_is_still_logged(
    logs: LogCapture, wrap: Callable[[ASGIApp], ASGIApp]
) -> None:
    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep_forever()

    logs.configure()
    app = wrap(slow)
    async with anyio.create_task_group() as group:
        group.start_soon(_drive, app, [])
        await anyio.lowlevel.checkpoint()
        group.cancel_scope.cancel()
    (line,) = logs.access()
    assert (line["status"], line["disconnected"]) == (499, True)


@pytest.mark.anyio
async def test_stream_cut_by_a_disconnect_keeps_the_sent_status_and_flags_it(
    logs: LogCapture,
    wrap: Callable[[ASGIApp], ASGIApp],
) -> None:
    async def streams(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise OSError("client went away")

    async def send_then_fail(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("broken pipe")

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    logs.configure()
    scope = {"type": "http", "method": "GET", "path": "/s", "headers": [], "client": None}
    with pytest.raises(OSError, match="broken pipe"):
        await wrap(streams)(scope, receive, send_then_fail)
    (line,) = logs.access()
    assert (line["status"], line["disconnected"], line["bytes"]) == (200, True, 4)


@pytest.mark.anyio
async def test_app_failure_after_headers_is_an_error_not_a_disconnect(
    logs: LogCapture, wrap: Callable[[ASGIApp], ASGIApp]
) -> None:
    async def breaks(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ConnectionRefusedError("database down")  # an OSError of the app's own

    logs.configure()
    with pytest.raises(ConnectionRefusedError):
        await _drive(wrap(breaks), [])
    (line,) = logs.access()
    assert (line["status"], line["level"]) == (500, "error")
    assert "disconnected" not in line


@pytest.mark.anyio
async def test_non_http_scopes_pass_through_unlogged(logs: LogCapture) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    logs.configure()
    await AccessLogMiddleware(app)({"type": "lifespan"}, _never, _ignore)
    assert seen == ["lifespan"]
    assert logs.access() == []


async def _never() -> Message:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


async def _ignore(message: Message) -> None:
    return None


@pytest.mark.anyio
async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    logs: LogCapture,
) -> None:
    app = _app(proxy=ProxySettings(trusted=["10.0.0.0/8"]))
    logs.configure()
    for peer in ("203.0.113.9", "10.0.0.5"):
        transport = httpx.ASGITransport(app=app, client=(peer, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.get("/notes/1", headers={"x-forwarded-for": "198.51.100.7"})
    untrusted, trusted = logs.access()
    assert untrusted["client"] == "203.0.113.9"
    assert trusted["client"] == "198.51.100.7"


def test_bad_trusted_proxy_fails_at_build_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="CHASSIS_PROXY__TRUSTED"):
        build_app(ChassisSettings(proxy=ProxySettings(trusted=["not-an-ip"])))


async def _plain(request: Request) -> PlainTextResponse:
    return PlainTextResponse("plain")


class _CopiesScope:
    """An inner middleware that hands a copy of the scope on, as some do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(dict(scope), receive, send)


def test_templates_for_mounts_plain_routes_and_routers_that_hide_the_route(
    logs: LogCapture,
) -> None:
    sub = FastAPI()

    @sub.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app = FastAPI(
        routes=[
            Route("/plain/{name}", _plain),
            Mount("/v1", app=sub),
            Mount("/static", app=PlainTextResponse("file")),
        ]
    )
    app.add_middleware(_CopiesScope)
    app.add_middleware(AccessLogMiddleware)
    logs.configure()
    with TestClient(app) as client:
        client.get("/plain/ada")
        client.get("/v1/items/5")
        client.get("/static/css/site.css")
        client.post("/plain/ada")
    routes = [(line["route"], line["status"]) for line in logs.access()]
    assert routes == [
        ("/plain/{name}", 200),
        ("/v1/items/{item_id}", 200),
        ("/static", 200),
        ("/plain/{name}", 405),
    ]


def test_mounted_app_template_when_the_route_is_left_in_scope(logs: LogCapture) -> None:
    sub = FastAPI()

    @sub.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app = FastAPI(routes=[Mount("/v1", app=sub)])
    app.add_middleware(AccessLogMiddleware)
    logs.configure()
    with TestClient(app) as client:
        client.get("/v1/items/5")
    assert logs.access()[0]["route"] == "/v1/items/{item_id}"


@pytest.mark.anyio
async def test_pathsend_file_responses_count_the_announced_size(
    logs: LogCapture, wrap: Callable[[ASGIApp], ASGIApp]
) -> None:
    async def sends_file(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/css"), (b"content-length", b"1234")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": "/srv/site.css"})

    logs.configure()
    sent = await _drive(wrap(sends_file), [])
    assert sent[-1]["type"] == "http.response.pathsend"
    (line,) = logs.access()
    assert (line["status"], line["bytes"]) == (200, 1234)
    assert "disconnected" not in line


async def current_user() -> AsyncIterator[str]:
    token = subject_var.set("user-7")
    try:
        yield "user-7"
    finally:
        subject_var.reset(token)


def test_subject_set_by_an_async_dependency_reaches_the_access_line(logs: LogCapture) -> None:
    app = _app()

    @app.get("/me")
    async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
        return {"user": user}

    logs.configure()
    with TestClient(app) as client:
        client.get("/me")
        client.get("/notes/1")
    me_line, other = logs.access()
    assert me_line["subject"] == "user-7"
    assert "subject" not in other
