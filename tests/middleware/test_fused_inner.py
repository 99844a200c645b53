"""The fused body limit + error boundary answer and log exactly as the two separate layers.

`install()` replaces the adjacent `BodyLimitMiddleware` and `ErrorBoundaryMiddleware` with one
`BoundedBodyLimitMiddleware`, and moves that into the `CoreMiddleware` right outside it. Every
scenario where the two interact (limits hit before, during and after the handler; crashes
before and after the response started; handlers that swallow the limit error; errors raised in
the app's own middleware) runs through an app built normally, one with only the first fusion
and one with neither, with and without the access log (which takes another path through
`CoreMiddleware`): status, headers, body and log lines must match.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from fastapi.websockets import WebSocket
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_chassis import ChassisSettings, body_limit, build_app
from fastapi_chassis import app as app_module
from fastapi_chassis._error_boundary import ErrorBoundaryMiddleware
from fastapi_chassis.errors import NotFound
from fastapi_chassis.middleware._bounded import BoundedBodyLimitMiddleware
from fastapi_chassis.middleware._core import CoreMiddleware
from fastapi_chassis.middleware.body_limit import BodyLimitMiddleware, ContentTooLarge
from tests._logs import LogCapture, capture_logs
from tests.middleware.asgi import Result, chunks, request

pytestmark = pytest.mark.anyio

SETTINGS: dict[str, Any] = {
    "environment": "staging",
    "logging": {"json_output": True},
    "body_limit": {"max_bytes": 1000},
}


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    yield from capture_logs()


class RaisesInOwnMiddleware:
    """An app's own middleware (inside the chassis stack) that fails on one path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/own-middleware-404":
            raise NotFound("raised by the app's middleware")
        if scope["type"] == "http" and scope["path"] == "/own-middleware-crash":
            raise RuntimeError("the app's middleware broke")
        await self.app(scope, receive, send)


#: How far `install()` fuses: everything (the default), the inner pair only, or nothing.
FUSIONS = ("all", "inner", "none")


def settings_for(access_log: bool) -> ChassisSettings:
    return ChassisSettings(
        _env_file=None, **{**SETTINGS, "logging": {"json_output": True, "access_log": access_log}}
    )


def make_app(
    fused: bool | str, monkeypatch: pytest.MonkeyPatch, *, access_log: bool = True
) -> FastAPI:
    fusion = {True: "all", False: "none"}.get(fused, fused)
    with monkeypatch.context() as patch:
        if fusion != "all":
            patch.setattr(app_module, "fuse_body_limit", lambda chassis: None)
        if fusion == "none":
            patch.setattr(app_module, "fuse_inner_blocks", lambda chassis: None)
        app = build_app(settings_for(access_log))
    app.add_middleware(RaisesInOwnMiddleware)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/unlimited")
    @body_limit(None)
    async def unlimited(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/swallow")
    async def swallow(request: Request) -> dict[str, str]:
        try:
            await request.body()
        except ContentTooLarge:
            return {"swallowed": "yes"}  # the client still gets the 413
        return {"swallowed": "no"}

    @app.post("/in-task-group")
    async def in_task_group(request: Request) -> dict[str, bool]:
        async with anyio.create_task_group() as group:
            group.start_soon(request.body)
        return {"ok": True}

    @app.post("/ignores-body")
    async def ignores_body() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    @app.get("/gone")
    async def gone() -> None:
        raise ClientDisconnect()

    @app.get("/stream-crash")
    async def stream_crash() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first part"
            raise RuntimeError("failed half-way")

        return StreamingResponse(body(), media_type="text/plain")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for part in (b"a" * 10, b"b" * 20):
                yield part

        return StreamingResponse(body(), media_type="text/plain")

    return app


_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _comparable(result: Result) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = [(name, _ID.sub(b"<id>", value)) for name, value in result.headers if name != b"date"]
    return result.status, headers, _ID.sub(b"<id>", result.body)


def _lines(logs: LogCapture) -> list[dict[str, Any]]:
    lines = []
    for line in logs.lines():
        line = {k: v for k, v in line.items() if k not in ("duration_ms", "timestamp")}
        if "request_id" in line:
            line["request_id"] = "<id>"
        line["event"] = _ID.sub(b"<id>", line["event"].encode()).decode()
        if "exception" in line:  # tracebacks name different frames; the type and text stay
            line["exception"] = [
                {k: v for k, v in e.items() if k in ("exc_type", "exc_value")}
                for e in line["exception"]
            ]
        lines.append(line)
    return lines


LENGTH = b"content-length"
CASES: list[tuple[str, str, list[tuple[bytes, bytes]], list[bytes]]] = [
    ("POST", "/echo", [(LENGTH, b"5")], [b"hello"]),
    ("POST", "/echo", [(LENGTH, b"2000")], list(chunks(2000, 500))),
    ("POST", "/echo", [], list(chunks(1800, 600))),  # no length: counted as it arrives
    ("POST", "/echo", [(LENGTH, b"10")], list(chunks(1800, 600))),  # a lying length
    ("POST", "/echo", [(LENGTH, b"12abc")], [b"x"]),
    ("POST", "/echo", [(LENGTH, b"5"), (LENGTH, b"6")], [b"hello"]),
    ("POST", "/unlimited", [], list(chunks(5000, 1000))),
    ("POST", "/swallow", [], list(chunks(1800, 600))),
    ("POST", "/in-task-group", [], list(chunks(1800, 600))),
    ("POST", "/ignores-body", [(LENGTH, b"2000")], []),
    ("GET", "/crash", [], []),
    ("GET", "/gone", [], []),
    ("GET", "/stream-crash", [], []),
    ("GET", "/stream", [], []),
    ("GET", "/own-middleware-404", [], []),
    ("GET", "/own-middleware-crash", [], []),
    ("GET", "/nowhere", [], []),
]


async def test_the_body_limit_and_boundary_are_one_layer_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = make_app(True, monkeypatch).user_middleware
    classes = [entry.cls for entry in default]
    assert CoreMiddleware in classes
    assert not {BoundedBodyLimitMiddleware, BodyLimitMiddleware, ErrorBoundaryMiddleware} & set(
        classes
    )
    core = default[classes.index(CoreMiddleware)]
    assert core.kwargs["body_limit"]["max_bytes"] == 1000
    assert "boundary" in core.kwargs["body_limit"]
    inner = [entry.cls for entry in make_app("inner", monkeypatch).user_middleware]
    assert inner[inner.index(CoreMiddleware) + 1] is BoundedBodyLimitMiddleware
    separate = [entry.cls for entry in make_app(False, monkeypatch).user_middleware]
    at = separate.index(BodyLimitMiddleware)
    assert separate[at + 1] is ErrorBoundaryMiddleware


@pytest.mark.parametrize("access_log", [True, False], ids=["access-log", "no-access-log"])
@pytest.mark.parametrize(("method", "path", "headers", "body"), CASES)
async def test_fused_and_separate_layers_answer_and_log_the_same(
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: list[bytes],
    access_log: bool,
    logs: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = []
    for fusion in FUSIONS:
        app = make_app(fusion, monkeypatch, access_log=access_log)  # configures logging first
        logs.configure(settings_for(access_log))
        result = await request(app, path, method=method, headers=headers, body=body)
        seen.append((_comparable(result), _lines(logs), result.bytes_pulled))
    assert seen[0] == seen[1] == seen[2]
    (status, _, payload), lines, pulled = seen[0]
    if path == "/gone":
        assert status == 0  # nothing is sent to a client that left
        return
    if path == "/stream-crash":
        assert (status, payload) == (200, b"first part")  # broken off, not finished
        assert any("exception on GET /stream-crash" in line["event"] for line in lines)
        return
    assert status != 0
    if status == 413:
        assert pulled <= 1000 + 600  # never more than the limit plus one chunk
    requests = [line["status"] for line in lines if line.get("event") == "request"]
    assert requests == ([status] if access_log else [])


@pytest.mark.parametrize("access_log", [True, False], ids=["access-log", "no-access-log"])
async def test_expected_answers_of_the_fused_layer(
    access_log: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(True, monkeypatch, access_log=access_log)
    over = await request(app, "/echo", method="POST", body=list(chunks(1800, 600)))
    assert over.status == 413
    assert over.header("connection") == "close"
    assert over.json()["code"] == "content_too_large"
    swallowed = await request(app, "/swallow", method="POST", body=list(chunks(1800, 600)))
    assert swallowed.status == 413
    crash = await request(app, "/own-middleware-crash")
    assert crash.status == 500
    assert crash.header("x-request-id") is not None
    assert crash.json()["code"] == "internal_error"
    missing = await request(app, "/own-middleware-404")
    assert missing.status == 404
    assert missing.json()["detail"] == "raised by the app's middleware"
    bad = await request(app, "/echo", method="POST", headers=[(LENGTH, b"-1")], body=[b"x"])
    assert bad.status == 400
    assert bad.json()["code"] == "invalid_content_length"


async def test_websockets_pass_the_fused_layer_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(True, monkeypatch)

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("x" * 5000)  # larger than the body limit: not a request body
        await socket.close()

    with TestClient(app) as client, client.websocket_connect("/ws") as socket:
        assert socket.receive_text() == "x" * 5000
