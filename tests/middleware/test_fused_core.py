"""The fused outer layer answers, logs and counts exactly as the separate middleware do.

`install()` replaces the adjacent in-flight, request-id, access-log, metrics and
security-header middleware with one `CoreMiddleware`. Each scenario runs through an app built
normally and through one built with fusion switched off; everything a client, a log reader or a
Prometheus scrape can see must match (request ids and timings aside).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client import CollectorRegistry, generate_latest

from fastapi_chassis import ChassisSettings, build_app
from fastapi_chassis import app as app_module
from fastapi_chassis.errors import NotFound
from fastapi_chassis.health import InFlightMiddleware
from fastapi_chassis.middleware._core import CoreMiddleware
from fastapi_chassis.middleware._guards import ProblemCORSMiddleware
from fastapi_chassis.observability.metrics import install_metrics
from tests._logs import LogCapture, capture_logs
from tests.middleware.asgi import Result, request

pytestmark = pytest.mark.anyio

SETTINGS = {
    "environment": "staging",
    "logging": {"json_output": True},
    "metrics": {"enabled": True},
    "docs": {"enabled": True},
}


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    yield from capture_logs()


def make_app(fused: bool, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> FastAPI:
    with monkeypatch.context() as patch:
        if not fused:
            patch.setattr(app_module, "fuse_outer_blocks", lambda chassis: None)
        # A registry per app, so the two apps' counts can be compared.
        registry = CollectorRegistry()
        patch.setattr(
            app_module,
            "install_metrics",
            lambda app, settings: install_metrics(app, settings, registry=registry),
        )
        app = build_app(ChassisSettings(_env_file=None, **{**SETTINGS, **overrides}))
    app.state.registry = registry

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/own-headers")
    async def own_headers() -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse(
            {"ok": True}, headers={"X-Frame-Options": "SAMEORIGIN", "X-Request-ID": "forged"}
        )

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("no such thing")

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for part in (b"a" * 10, b"b" * 20, b"c" * 30):
                yield part

        return StreamingResponse(body(), media_type="text/plain")

    return app


_VOLATILE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _comparable(result: Result) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = [
        (name, _VOLATILE.sub(b"<id>", value)) for name, value in result.headers if name != b"date"
    ]
    return result.status, headers, _VOLATILE.sub(b"<id>", result.body)


def _lines(logs: LogCapture) -> list[dict[str, Any]]:
    lines = []
    for line in logs.access():
        line = {k: v for k, v in line.items() if k not in ("duration_ms", "timestamp")}
        line["request_id"] = _VOLATILE.sub(b"<id>", line["request_id"].encode()).decode()
        lines.append(line)
    return lines


def _samples(app: FastAPI) -> list[str]:
    text = generate_latest(app.state.registry).decode()
    return sorted(
        re.sub(r" [0-9.e+-]+$", " <n>", line) if "_sum" in line or "_created" in line else line
        for line in text.splitlines()
        if line.startswith(("http_", "chassis_")) and "_bucket" not in line
    )


CASES = [
    ("GET", "/items/42", [(b"x-request-id", b"client-chosen-id")]),
    ("GET", "/items/not-a-number", []),
    ("HEAD", "/items/1", []),
    ("GET", "/own-headers", []),
    ("GET", "/missing", []),
    ("GET", "/crash", []),
    ("GET", "/stream", [(b"user-agent", b"curl/8 \x1b[31m")]),
    ("GET", "/nowhere", []),
    ("GET", "/healthz", []),
    ("GET", "/docs", []),
    ("POST", "/items/1", [(b"content-length", b"abc")]),
]


async def test_outer_blocks_are_fused_into_one_layer_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(True, monkeypatch)
    classes = [entry.cls for entry in app.user_middleware]
    assert classes.count(CoreMiddleware) == 1
    assert InFlightMiddleware not in classes
    unfused = [entry.cls.__name__ for entry in make_app(False, monkeypatch).user_middleware]  # type: ignore[attr-defined]
    assert unfused[:5] == [
        "InFlightMiddleware",
        "RequestIDMiddleware",
        "AccessLogMiddleware",
        "MetricsMiddleware",
        "SecurityHeadersMiddleware",
    ]


@pytest.mark.parametrize(("method", "path", "headers"), CASES)
async def test_fused_and_separate_layers_look_the_same_from_outside(
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    logs: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = []
    for fused in (True, False):
        app = make_app(fused, monkeypatch)  # configures logging: capture after it
        logs.configure(ChassisSettings(_env_file=None, **SETTINGS))
        result = await request(app, path, method=method, headers=headers)
        seen.append((_comparable(result), _lines(logs), _samples(app)))
    assert seen[0] == seen[1]
    (status, response_headers, _), lines, samples = seen[0]
    names = [name for name, _ in response_headers]
    assert names.count(b"x-request-id") == 1
    assert (b"x-content-type-options", b"nosniff") in response_headers
    counted = any("http_requests_total{" in sample for sample in samples)
    if path == "/healthz":
        assert lines == []
        assert not counted
    else:
        assert [line["status"] for line in lines] == [status]
        assert counted, samples


async def test_in_flight_count_covers_the_request_when_fused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi_chassis.health import get_health

    app = make_app(True, monkeypatch)
    health = get_health(app)
    during: list[int] = []

    @app.get("/count")
    async def count() -> dict[str, bool]:
        during.append(health.in_flight)
        return {"ok": True}

    await request(app, "/count")
    with pytest.raises(RuntimeError):
        # No boundary outside the fused layer would answer a crash in it; the count still ends.
        await CoreMiddleware(
            _raise,
            request_id={},
            security_headers={},
            registry=health,
        )({"type": "http", "headers": [], "path": "/", "method": "GET"}, _nothing, _nothing)
    assert during == [1]
    assert health.in_flight == 0


async def test_cors_between_the_blocks_keeps_them_separate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(True, monkeypatch, cors={"allow_origins": ["https://app.example"]})
    classes = [entry.cls for entry in app.user_middleware]
    # CORS sits after the security headers, so the run before it is still fused.
    assert CoreMiddleware in classes
    assert ProblemCORSMiddleware in classes
    result = await request(app, "/items/1", headers=[(b"origin", b"https://app.example")])
    assert result.header("access-control-allow-origin") == "https://app.example"
    assert result.header("access-control-expose-headers") is not None


async def _raise(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("inner layer failed")


async def _nothing(*args: Any) -> Any:
    return None


class OneShotHeaders:
    """The app's own middleware handing its response headers on as a one-shot iterator."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_iterated(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = iter(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_iterated)


@pytest.mark.anyio
@pytest.mark.parametrize("access_log", [True, False], ids=["access-log", "no-access-log"])
async def test_response_headers_given_as_any_iterable_are_all_kept(
    access_log: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(True, monkeypatch, logging={"access_log": access_log})
    app.add_middleware(OneShotHeaders)
    result = await request(app, "/items/3", headers=[(b"x-request-id", b"abc")])
    assert result.status == 200
    assert result.header("content-type") == "application/json"
    assert result.header("content-length") == str(len(result.body))
    assert result.header("x-request-id") == "abc"
    assert result.header("x-content-type-options") == "nosniff"
