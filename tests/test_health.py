from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fastapi_chassis import (
    ChassisSettings,
    ConfigurationError,
    HealthSettings,
    RedisSettings,
    build_app,
)
from fastapi_chassis.health import (
    HealthRegistry,
    InFlightMiddleware,
    add_check,
    get_health,
)
from tests.conftest import subprocess_env
from tests.examples._run import run_python

ROOT = Path(__file__).resolve().parents[1]


def _app(**health: Any) -> FastAPI:
    return build_app(ChassisSettings(health=HealthSettings(**health)))


async def _ok() -> None:
    return None


async def _boom() -> None:
    raise ConnectionError("db at 10.0.0.5:5432 refused password=hunter2")


async def _hang() -> None:
    await anyio.sleep_forever()


def test_liveness_answers_200_without_running_checks() -> None:
    app = _app()
    calls: list[str] = []

    async def counted() -> None:
        calls.append("ran")
        raise ConnectionError

    add_check(app, "db", counted)
    with TestClient(app) as client:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert client.head("/healthz").status_code == 200
    assert calls == []


def test_readiness_reports_each_passing_check_with_latency() -> None:
    app = _app()
    add_check(app, "db", _ok)
    add_check(app, "cache", lambda: True)  # sync checks run in a worker thread
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"db", "cache"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert check["critical"] is True
        assert check["latency_ms"] >= 0


def test_failing_and_hanging_critical_checks_make_readiness_503_problem() -> None:
    app = _app(check_timeout=0.05)
    add_check(app, "db", _ok)
    add_check(app, "broker", _boom)
    add_check(app, "search", _hang)
    add_check(app, "flag", lambda: False)
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["detail"] == "failed readiness checks: broker, search, flag"
    checks = body["checks"]
    assert checks["db"]["status"] == "ok"
    assert checks["broker"] == {**checks["broker"], "status": "failed", "error": "ConnectionError"}
    assert checks["search"]["error"] == "timed out after 0.05 s"
    assert checks["flag"]["error"] == "returned False"
    # The exception message (hosts, credentials) never reaches the response.
    assert "hunter2" not in response.text
    assert "10.0.0.5" not in response.text


def test_per_check_timeout_overrides_the_default() -> None:
    app = _app(check_timeout=30)
    add_check(app, "slow", _hang, timeout=0.02)
    with TestClient(app) as client:
        body = client.get("/readyz").json()
    assert body["checks"]["slow"]["error"] == "timed out after 0.02 s"


def test_non_critical_failure_is_reported_but_readiness_stays_200() -> None:
    app = _app()
    add_check(app, "db", _ok)
    add_check(app, "recommendations", _boom, critical=False)
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["recommendations"]["status"] == "failed"
    assert body["checks"]["recommendations"]["critical"] is False


def test_checks_run_concurrently() -> None:
    # Each check waits for the other to have started: run one after the other, both time out.
    app = _app(check_timeout=5)
    started = {"a": threading.Event(), "b": threading.Event()}

    def waits_for(other: str, me: str) -> Callable[[], bool]:
        def check() -> bool:
            started[me].set()
            return started[other].wait(timeout=5)

        return check

    add_check(app, "a", waits_for("b", "a"))
    add_check(app, "b", waits_for("a", "b"))
    with TestClient(app) as client:
        assert client.get("/readyz").json()["status"] == "ok"


def test_duplicate_or_invalid_checks_are_refused() -> None:
    registry = HealthRegistry()
    registry.add_check("db", _ok)
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.add_check("db", _ok)
    with pytest.raises(ConfigurationError, match="not callable"):
        registry.add_check("x", "nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="timeout must be positive"):
        registry.add_check("y", _ok, timeout=0)
    registry.remove_check("db")
    assert registry.check_names == ()


def test_health_endpoints_stay_out_of_the_openapi_schema_unless_asked() -> None:
    with TestClient(_app()) as client:
        assert "/healthz" not in client.get("/openapi.json").json()["paths"]
    with TestClient(_app(include_in_schema=True)) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/healthz", "/readyz"} <= set(paths)
        assert set(paths["/healthz"]) == {"get"}
        assert client.head("/readyz").status_code == 200


def test_custom_paths_and_disabled_health() -> None:
    with TestClient(_app(liveness_path="/live", readiness_path="/ready")) as client:
        assert client.get("/live").status_code == 200
        assert client.get("/ready").status_code == 200
        assert client.get("/healthz").status_code == 404
    disabled = _app(enabled=False)
    with pytest.raises(ConfigurationError, match="CHASSIS_HEALTH__ENABLED"):
        get_health(disabled)
    with TestClient(disabled) as client:
        assert client.get("/healthz").status_code == 404


class _Store:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def ping(self) -> None:
        if self.fail:
            raise ConnectionError("redis down")


def test_redis_check_uses_the_state_store_registered_later() -> None:
    settings = ChassisSettings(redis=RedisSettings(url=SecretStr("redis://127.0.0.1:6379/0")))
    app = build_app(settings)
    assert get_health(app).check_names == ("redis",)
    with TestClient(app) as client:
        # No store registered: the check fails instead of passing silently.
        del app.state.chassis.extensions["state"]
        assert client.get("/readyz").json()["checks"]["redis"]["error"] == "LookupError"
        app.state.chassis.extensions["state"] = _Store(fail=True)
        assert client.get("/readyz").status_code == 503
        app.state.chassis.extensions["state"] = _Store(fail=False)
        assert client.get("/readyz").json()["checks"]["redis"]["status"] == "ok"


def test_redis_check_against_a_real_server(redis_base_url: str) -> None:
    """The chassis' own Redis store answers the readiness check; a dead one fails it."""
    up = build_app(ChassisSettings(redis=RedisSettings(url=SecretStr(redis_base_url))))
    with TestClient(up) as client:
        assert client.get("/readyz").json()["checks"]["redis"]["status"] == "ok"
    down = build_app(
        ChassisSettings(
            redis=RedisSettings(
                url=SecretStr("redis://127.0.0.1:1"), socket_timeout=0.2, connect_timeout=0.2
            )
        )
    )
    with TestClient(down) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["code"] == "not_ready"


def test_registry_works_in_a_plain_fastapi_app() -> None:
    health = HealthRegistry(check_timeout=1)
    health.add_check("db", _boom)
    app = FastAPI(lifespan=health.lifespan)
    app.include_router(health.router(readiness_path="/ready"))
    app.add_middleware(InFlightMiddleware, registry=health)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/ready").json()["code"] == "not_ready"
    assert health.draining


async def _lifespan(app: Any) -> tuple[Callable[[], Any], Callable[[], bool], Any]:
    """Start `app`'s lifespan; return (begin shutdown, shutdown finished?, the task)."""
    to_app: list[dict[str, Any]] = [{"type": "lifespan.startup"}]
    sent: list[str] = []
    wake = anyio.Event()
    state = {"wake": wake}

    async def receive() -> dict[str, Any]:
        while not to_app:
            state["wake"] = anyio.Event()
            await state["wake"].wait()
        return to_app.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    async def run() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    def shutdown() -> None:
        to_app.append({"type": "lifespan.shutdown"})
        state["wake"].set()

    return shutdown, lambda: "lifespan.shutdown.complete" in sent, run


@pytest.mark.anyio
async def test_draining_turns_readiness_503_while_an_in_flight_request_completes() -> None:
    app = _app()
    entered = anyio.Event()
    release = anyio.Event()

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        entered.set()
        await release.wait()
        return {"done": "yes"}

    registry = get_health(app)
    shutdown, finished, run_lifespan = await _lifespan(app)
    transport = httpx.ASGITransport(app=app)
    results: dict[str, httpx.Response] = {}
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(run_lifespan)
        assert (await client.get("/readyz")).status_code == 200

        async def call_slow() -> None:
            results["slow"] = await client.get("/slow")

        group.start_soon(call_slow)
        await entered.wait()
        assert registry.in_flight == 1

        shutdown()
        with anyio.fail_after(5):
            while not registry.draining:
                await anyio.lowlevel.checkpoint()
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["code"] == "not_ready"
        assert ready.json()["draining"] is True
        assert (await client.get("/healthz")).status_code == 200
        # Shutdown waits for the in-flight request.
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        assert not finished()

        release.set()
    assert results["slow"].status_code == 200
    assert results["slow"].json() == {"done": "yes"}
    assert finished()
    assert registry.in_flight == 0


@pytest.mark.anyio
async def test_in_flight_requests_finish_before_the_app_lifespan_closes_its_resources() -> None:
    events: list[str] = []
    db = {"open": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db["open"] = True
        yield
        events.append("user shutdown")
        db["open"] = False

    app = build_app(ChassisSettings(environment="test"), lifespan=lifespan)
    entered = anyio.Event()
    release = anyio.Event()

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        entered.set()
        await release.wait()
        events.append("request finished")
        return {"db_open": db["open"]}

    registry = get_health(app)
    shutdown, finished, run_lifespan = await _lifespan(app)
    transport = httpx.ASGITransport(app=app)
    results: dict[str, httpx.Response] = {}
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(run_lifespan)
        assert (await client.get("/readyz")).status_code == 200

        async def call_slow() -> None:
            results["slow"] = await client.get("/slow")

        group.start_soon(call_slow)
        await entered.wait()
        shutdown()  # the server begins the lifespan shutdown with the request still open
        with anyio.fail_after(5):
            while not registry.draining:
                await anyio.lowlevel.checkpoint()
        assert (await client.get("/readyz")).status_code == 503
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        assert events == []  # the app's shutdown waits for the drain
        assert db["open"]
        release.set()
    assert results["slow"].json() == {"db_open": True}
    assert events == ["request finished", "user shutdown"]
    assert finished()


def test_a_second_lifespan_of_the_same_app_is_ready_again() -> None:
    app = _app()
    registry = get_health(app)
    for _ in range(2):
        with TestClient(app) as client:
            assert not registry.draining
            response = client.get("/readyz")
            assert response.status_code == 200, response.text
        assert registry.draining


def test_a_plain_app_with_the_registry_lifespan_is_ready_again_after_a_restart() -> None:
    health = HealthRegistry()
    app = FastAPI(lifespan=health.lifespan)
    app.include_router(health.router())
    for _ in range(2):
        with TestClient(app) as client:
            assert client.get("/readyz").status_code == 200
        assert health.draining


@pytest.mark.anyio
async def test_shutdown_wait_for_in_flight_requests_is_bounded() -> None:
    registry = HealthRegistry(shutdown_timeout=0.01)
    registry._request_started()  # a request that never finishes
    await registry.drain()
    assert registry.draining
    assert registry.in_flight == 1


SERVER = """
import socket, sys
import uvicorn
from fastapi_chassis import build_app, ChassisSettings, HealthSettings
app = build_app(ChassisSettings(health=HealthSettings(drain_seconds=60)))
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on")).run(sockets=[sock])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_under_uvicorn_drains_readiness_before_the_server_stops() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(base + "/readyz").status_code == 200
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while httpx.get(base + "/readyz").status_code != 503:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # Draining: still accepting and alive, only readiness changed.
        assert httpx.get(base + "/healthz").status_code == 200
        assert proc.poll() is None
        # A second SIGTERM stops the server without waiting out the drain delay.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0 or proc.returncode == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_health_checks_example_runs() -> None:
    code = (
        "from fastapi.testclient import TestClient\n"
        "import examples.health_checks as ex\n"
        "with TestClient(ex.app) as c:\n"
        "    body = c.get('/readyz').json()\n"
        "    assert body['status'] == 'degraded', body\n"
        "    assert body['checks']['recommendations']['status'] == 'failed'\n"
        "    ex.DATABASE_UP = False\n"
        "    r = c.get('/readyz')\n"
        "    assert r.status_code == 503 and r.json()['code'] == 'not_ready', r.text\n"
    )
    run_python(code)
