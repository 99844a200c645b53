from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, Request, WebSocket
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_chassis import (
    BodyLimitSettings,
    ChassisSettings,
    ConfigurationError,
    NotFound,
    RequestId,
    RequestIDMiddleware,
    RequestIDSettings,
    build_app,
    get_request_id,
)
from fastapi_chassis.middleware import new_request_id
from tests.middleware.asgi import request

UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def echo_app(settings: ChassisSettings | None = None) -> FastAPI:
    app = build_app(settings or ChassisSettings())

    @app.get("/id")
    async def show(request_id: RequestId, request: Request) -> dict[str, Any]:
        return {
            "alias": request_id,
            "context": get_request_id(),
            "state": request.state.request_id,
        }

    return app


def test_minted_ids_are_uuid7_unique_and_echoed() -> None:
    with TestClient(echo_app()) as client:
        responses = [client.get("/id") for _ in range(50)]
    ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(ids)) == 50
    for response, request_id in zip(responses, ids, strict=True):
        assert UUID7.fullmatch(request_id)
        assert uuid.UUID(request_id).version == 7
        body = response.json()
        assert body == {"alias": request_id, "context": request_id, "state": request_id}


def test_minted_ids_sort_by_mint_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(1_700_000_000_000_000_000, 1_800_000_000_000_000_000, 7_000_000))
    monkeypatch.setattr(time, "time_ns", lambda: next(clock))
    ids = [new_request_id() for _ in range(200)]
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    "incoming",
    ["abc-123", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "trace:span.1_2", "x" * 128],
    ids=["simple", "nginx-32-hex", "punctuation", "max-length"],
)
def test_safe_incoming_id_is_kept(incoming: str) -> None:
    with TestClient(echo_app()) as client:
        response = client.get("/id", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
    assert response.json()["context"] == incoming


@pytest.mark.anyio
@pytest.mark.parametrize(
    "values",
    [
        [b"abc\r\nSet-Cookie: a=b"],
        [b"abc\nx"],
        [b"x" * 10240],
        [b"x" * 129],
        ["caf\u00e9".encode()],
        [b""],
        [b"has space"],
        [b"esc\x1b[31m"],
        [b"one", b"two"],
        [b"same", b"same"],
    ],
    ids=[
        "crlf-injection",
        "lf",
        "10kb",
        "one-too-long",
        "unicode",
        "empty",
        "space",
        "ansi-escape",
        "two-headers",
        "two-equal-headers",
    ],
)
async def test_hostile_incoming_id_is_replaced_never_echoed(values: list[bytes]) -> None:
    app = echo_app()
    result = await request(app, "/id", headers=[(b"x-request-id", v) for v in values])
    assert result.status == 200
    assert len(result.all("x-request-id")) == 1
    assert UUID7.fullmatch(result.header("x-request-id") or "")
    assert result.json()["context"] == result.header("x-request-id")


def test_incoming_ids_are_ignored_when_not_trusted() -> None:
    settings = ChassisSettings(request_id=RequestIDSettings(trust_incoming=False))
    with TestClient(echo_app(settings)) as client:
        response = client.get("/id", headers={"X-Request-ID": "client-chosen"})
    assert UUID7.fullmatch(response.headers["x-request-id"])


def test_custom_header_name_and_length_from_settings() -> None:
    settings = ChassisSettings(
        request_id=RequestIDSettings(header="X-Correlation-ID", max_length=8)
    )
    with TestClient(echo_app(settings)) as client:
        kept = client.get("/id", headers={"X-Correlation-ID": "12345678"})
        replaced = client.get("/id", headers={"X-Correlation-ID": "123456789"})
    assert kept.headers["x-correlation-id"] == "12345678"
    assert "x-request-id" not in kept.headers
    assert UUID7.fullmatch(replaced.headers["x-correlation-id"])


def test_handler_set_id_header_is_replaced_by_the_real_one() -> None:
    app = build_app(ChassisSettings())

    @app.get("/spoof")
    async def spoof() -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({}, headers={"X-Request-ID": "forged"})

    with TestClient(app) as client:
        response = client.get("/spoof", headers={"X-Request-ID": "real-1"})
    assert response.headers.get_list("x-request-id") == ["real-1"]


def test_id_reaches_dependencies_sync_handlers_background_tasks_and_streams() -> None:
    app = build_app(ChassisSettings())
    seen: dict[str, str | None] = {}

    def dependency() -> str | None:
        seen["sync dependency"] = get_request_id()
        return get_request_id()

    @app.get("/sync")
    def sync_handler(dep: str | None = Depends(dependency)) -> dict[str, str | None]:
        seen["sync handler"] = get_request_id()
        return {"dep": dep}

    def record(label: str) -> None:
        seen[label] = get_request_id()

    @app.get("/background")
    async def background(tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(record, "background task")
        return {"ok": True}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
                yield f"{get_request_id()}\n".encode()

        return StreamingResponse(lines(), media_type="text/plain")

    with TestClient(app) as client:
        sync = client.get("/sync", headers={"X-Request-ID": "sync-1"})
        bg = client.get("/background", headers={"X-Request-ID": "bg-1"})
        streamed = client.get("/stream", headers={"X-Request-ID": "stream-1"})
    assert sync.json() == {"dep": "sync-1"}
    assert seen == {
        "sync dependency": "sync-1",
        "sync handler": "sync-1",
        "background task": "bg-1",
    }
    assert bg.headers["x-request-id"] == "bg-1"
    assert streamed.text.splitlines() == ["stream-1"] * 3
    assert streamed.headers["x-request-id"] == "stream-1"


@pytest.mark.anyio
async def test_ids_never_leak_between_300_concurrent_requests() -> None:
    app = build_app(ChassisSettings())

    @app.get("/slow/{n}")
    async def slow(n: int, request_id: RequestId) -> dict[str, Any]:
        before = get_request_id()
        for _ in range(n % 5 + 1):
            await anyio.lowlevel.checkpoint()
        return {"before": before, "after": get_request_id(), "alias": request_id}

    mismatches: list[str] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def one(n: int) -> None:
            own = f"req-{n}"
            headers = {"X-Request-ID": own} if n % 2 else {}
            response = await client.get(f"/slow/{n}", headers=headers)
            expected = own if n % 2 else response.headers["x-request-id"]
            body = response.json()
            if {body["before"], body["after"], body["alias"], response.headers["x-request-id"]} != {
                expected
            }:
                mismatches.append(f"{n}: {body} {response.headers['x-request-id']}")

        async with anyio.create_task_group() as group:
            for n in range(300):
                group.start_soon(one, n)
    assert mismatches == []


@pytest.mark.anyio
async def test_contextvar_is_reset_after_the_request_even_when_the_app_raises() -> None:
    async def boom(scope: Scope, receive: Receive, send: Send) -> None:
        assert get_request_id() == "inside"
        raise RuntimeError("boom")

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    assert get_request_id() is None
    await request(RequestIDMiddleware(ok), headers=[(b"x-request-id", b"first")])
    assert get_request_id() is None
    with pytest.raises(RuntimeError, match="boom"):
        await request(RequestIDMiddleware(boom), headers=[(b"x-request-id", b"inside")])
    assert get_request_id() is None


class _Answers500:
    """Stands in for the error boundary: renders a 500 inside the chassis middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/crash":
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await self.app(scope, receive, send)


def test_every_status_carries_the_id_and_the_problem_body_names_it() -> None:
    app = build_app(ChassisSettings(body_limit=BodyLimitSettings(max_bytes=10)))
    # Innermost, where the chassis error boundary sits.
    app.user_middleware.append(Middleware(_Answers500))

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("nope")

    @app.post("/body")
    async def body(payload: dict[str, int]) -> dict[str, int]:
        return payload

    with TestClient(app) as client:
        cases = {
            "ok 200": client.post("/body", json={"a": 1}),
            "unknown route 404": client.get("/nowhere"),
            "ChassisError 404": client.get("/missing"),
            "validation 422": client.post("/body", json=["x"]),
            "body limit 413": client.post("/body", json={"a": 10**20}),
            "500": client.get("/crash"),
        }
    for label, response in cases.items():
        assert UUID7.fullmatch(response.headers.get("x-request-id", "")), label
    assert (
        cases["ChassisError 404"].json()["request_id"]
        == cases["ChassisError 404"].headers["x-request-id"]
    )
    assert cases["body limit 413"].status_code == 413
    assert cases["500"].status_code == 500


def test_websocket_gets_an_id_through_the_whole_stack() -> None:
    app = build_app(ChassisSettings())

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(
            {"state": websocket.scope["state"]["request_id"], "context": get_request_id()}
        )
        await websocket.close()

    with (
        TestClient(app) as client,
        client.websocket_connect("/ws", headers={"X-Request-ID": "ws-1"}) as socket,
    ):
        assert socket.receive_json() == {"state": "ws-1", "context": "ws-1"}


def test_request_id_alias_without_the_middleware_is_a_clear_error() -> None:
    app = FastAPI()

    @app.get("/id")
    async def show(request_id: RequestId) -> str:
        return request_id

    with TestClient(app) as client, pytest.raises(ConfigurationError, match="RequestIDMiddleware"):
        client.get("/id")


def test_invalid_header_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="CHASSIS_REQUEST_ID__HEADER"):
        build_app(ChassisSettings(request_id=RequestIDSettings(header="X Request ID")))


def test_disabled_request_id_adds_no_middleware() -> None:
    app = build_app(ChassisSettings(request_id=RequestIDSettings(enabled=False)))
    assert all(m.cls is not RequestIDMiddleware for m in app.user_middleware)
    with TestClient(app) as client:
        assert "x-request-id" not in client.get("/openapi.json").headers


def test_ids_stay_unique_and_valid_across_pool_refills_and_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def mint(_: int) -> list[str]:
        return [new_request_id() for _ in range(1000)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = [i for batch in pool.map(mint, range(8)) for i in batch]
    assert len(set(ids)) == len(ids) == 8000
    for request_id in ids[::97]:
        parsed = uuid.UUID(request_id)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == request_id


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_does_not_reuse_the_parents_random_parts() -> None:
    new_request_id()  # the parent's pool now holds unused random parts
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, "\n".join(new_request_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split("\n")
    os.waitpid(pid, 0)
    parent = [new_request_id() for _ in range(50)]
    tails = {request_id[14:] for request_id in parent}
    assert len(child) == 50
    assert not tails & {request_id[14:] for request_id in child}
