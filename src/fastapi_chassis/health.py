"""Health: liveness and readiness endpoints, a registry of readiness checks, and draining.

`/healthz` (liveness) answers 200 while the process can serve and never touches a dependency,
so a slow database does not get a healthy pod restarted. `/readyz` (readiness) runs every
registered check concurrently, each under its own timeout, and answers 200 with per-check status
and latency, or 503 problem+json naming the failed critical checks.

Draining: when shutdown begins (a SIGTERM delayed by `drain_seconds` under uvicorn, or the
lifespan exit), readiness turns 503 at once so load balancers stop routing here, then shutdown
waits, bounded, for in-flight requests to finish, before the app's own lifespan shuts down.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from time import monotonic, perf_counter
from types import FrameType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_chassis._chassis import get_chassis
from fastapi_chassis.errors import ConfigurationError, problem_body, problem_response

if TYPE_CHECKING:
    from fastapi_chassis.settings import ChassisSettings

__all__ = [
    "CheckFunction",
    "CheckResult",
    "HealthRegistry",
    "InFlightMiddleware",
    "add_check",
    "get_health",
    "install_health",
]

#: A readiness check: sync or async, no arguments. It fails by raising or returning `False`.
CheckFunction = Callable[[], Any]

_LIVE_BODY = b'{"status":"ok"}'


@dataclass(frozen=True)
class _Check:
    name: str
    fn: CheckFunction
    critical: bool
    timeout: float | None
    is_async: bool


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one readiness check."""

    name: str
    ok: bool
    critical: bool
    latency_ms: float
    #: Why it failed: "timed out after 2 s", "returned False" or the exception's class name.
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form used in readiness responses."""
        data: dict[str, Any] = {
            "status": "ok" if self.ok else "failed",
            "critical": self.critical,
            "latency_ms": round(self.latency_ms, 3),
        }
        if self.error is not None:
            data["error"] = self.error
        return data


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    )


class HealthRegistry:
    """Readiness checks, the draining flag and the in-flight request count of one app.

    Usable without the rest of the chassis:

        health = HealthRegistry(check_timeout=1.0)
        health.add_check("db", ping_database)
        app = FastAPI(lifespan=health.lifespan)
        app.include_router(health.router())
        app.add_middleware(InFlightMiddleware, registry=health)
    """

    def __init__(
        self,
        *,
        check_timeout: float = 2.0,
        drain_seconds: float = 0.0,
        shutdown_timeout: float = 30.0,
    ) -> None:
        if check_timeout <= 0:
            raise ConfigurationError(f"check_timeout must be positive, got {check_timeout}")
        if drain_seconds < 0 or shutdown_timeout < 0:
            raise ConfigurationError("drain_seconds and shutdown_timeout must not be negative")
        self.check_timeout = check_timeout
        self.drain_seconds = drain_seconds
        self.shutdown_timeout = shutdown_timeout
        self._checks: dict[str, _Check] = {}
        self._draining = False
        self._drain_started = 0.0
        self._hurry = False
        self._in_flight = 0
        self._idle: anyio.Event | None = None

    # -- checks ---------------------------------------------------------------------------

    def add_check(
        self,
        name: str,
        fn: CheckFunction,
        *,
        critical: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Register a readiness check.

        Args:
            name: Unique name shown in the readiness response.
            fn: Sync or async callable with no arguments; it fails by raising or returning
                `False`. Sync checks run in a worker thread so they cannot block the loop.
            critical: A failing critical check makes readiness 503; a non-critical one is
                reported and readiness stays 200.
            timeout: Seconds before the check counts as failed (default: the registry's).

        Raises:
            ConfigurationError: the name is taken, `fn` is not callable or `timeout` <= 0.
        """
        if name in self._checks:
            raise ConfigurationError(f"a health check named {name!r} is already registered")
        if not callable(fn):
            raise ConfigurationError(f"health check {name!r} is not callable: {fn!r}")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"health check {name!r}: timeout must be positive")
        self._checks[name] = _Check(name, fn, critical, timeout, _is_async_callable(fn))

    def remove_check(self, name: str) -> None:
        """Unregister a check; unknown names are ignored."""
        self._checks.pop(name, None)

    @property
    def check_names(self) -> tuple[str, ...]:
        """Names of the registered checks, in registration order."""
        return tuple(self._checks)

    async def run_checks(self) -> list[CheckResult]:
        """Run every check concurrently, each under its timeout; results in registration order."""
        checks = list(self._checks.values())
        results: list[CheckResult | None] = [None] * len(checks)

        async def run(index: int, check: _Check) -> None:
            results[index] = await self._run_one(check)

        async with anyio.create_task_group() as group:
            for index, check in enumerate(checks):
                group.start_soon(run, index, check)
        return [result for result in results if result is not None]

    async def _run_one(self, check: _Check) -> CheckResult:
        timeout = check.timeout if check.timeout is not None else self.check_timeout
        started = perf_counter()
        error: str | None = None
        try:
            with anyio.fail_after(timeout):
                if check.is_async:
                    outcome = await check.fn()
                else:
                    outcome = await anyio.to_thread.run_sync(check.fn, abandon_on_cancel=True)
            if outcome is False:
                error = "returned False"
        except TimeoutError:
            error = f"timed out after {timeout:g} s"
        except Exception as exc:
            # Only the class name: a readiness endpoint must not leak hosts or credentials.
            error = type(exc).__name__
        latency_ms = (perf_counter() - started) * 1000.0
        return CheckResult(check.name, error is None, check.critical, latency_ms, error)

    # -- draining -------------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        """True once shutdown has begun; readiness answers 503 from then on."""
        return self._draining

    def start_draining(self) -> None:
        """Turn readiness to 503 now (idempotent)."""
        if not self._draining:
            self._draining = True
            self._drain_started = monotonic()

    @property
    def in_flight(self) -> int:
        """HTTP requests being served right now (counted by `InFlightMiddleware`)."""
        return self._in_flight

    def _request_started(self) -> None:
        self._in_flight += 1

    def _request_finished(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def drain(self) -> None:
        """Start draining, wait out `drain_seconds`, then wait for in-flight requests (bounded).

        The delay counts from when draining began (a delayed SIGTERM already spent it) and is
        skipped after a second SIGTERM.
        """
        self.start_draining()
        remaining = self.drain_seconds - (monotonic() - self._drain_started)
        if remaining > 0 and not self._hurry:
            await anyio.sleep(remaining)
        if self._in_flight > 0:
            self._idle = anyio.Event()
            with anyio.move_on_after(self.shutdown_timeout):
                await self._idle.wait()

    def _delay_sigterm(self) -> Callable[[], None]:
        """Under a server that handles SIGTERM with `signal.signal` (uvicorn), delay its handler.

        On SIGTERM readiness turns 503 at once and the server's own handler runs
        `drain_seconds` later, so load balancers see the pod unready while it still accepts
        connections. A second SIGTERM goes straight through. Returns the undo function.
        """
        if self.drain_seconds <= 0 or threading.current_thread() is not threading.main_thread():
            return _nothing
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return _nothing
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio): leave signals to the server
            return _nothing
        delay = self.drain_seconds
        pending: list[asyncio.TimerHandle] = []

        def forward(signum: int, frame: FrameType | None) -> None:
            previous(signum, frame)

        def schedule(signum: int, frame: FrameType | None) -> None:
            pending.append(loop.call_later(delay, forward, signum, frame))

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self._draining:
                # Second SIGTERM (or shutdown already begun): stop now.
                self._hurry = True
                for handle in pending:
                    handle.cancel()
                previous(signum, frame)
                return
            self.start_draining()
            loop.call_soon_threadsafe(schedule, signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

        def undo() -> None:
            if signal.getsignal(signal.SIGTERM) is on_sigterm:
                signal.signal(signal.SIGTERM, previous)

        return undo

    def _reset(self) -> None:
        # A new lifespan of the same app (a second TestClient block) serves again.
        self._draining = False
        self._drain_started = 0.0
        self._hurry = False
        self._idle = None

    @asynccontextmanager
    async def serving(self, app: Any = None) -> AsyncIterator[None]:
        """Lifespan context without the drain: ready at startup, SIGTERM delayed while serving.

        For composing with a lifespan of your own: enter it first and `await drain()` before
        your shutdown code, so in-flight requests finish while your resources are still open.
        `install()` does this for chassis apps.
        """
        self._reset()
        undo = self._delay_sigterm()
        try:
            yield
        finally:
            undo()

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """Lifespan context: delays SIGTERM while serving, drains when the app shuts down."""
        async with self.serving(app):
            try:
                yield
            finally:
                await self.drain()

    # -- endpoints ------------------------------------------------------------------------

    async def readiness(self) -> Response:
        """The readiness response: 200 with per-check results, or 503 problem+json."""
        if self._draining:
            body = problem_body(
                503,
                title="Service Unavailable",
                code="not_ready",
                detail="the service is shutting down",
                extra={"draining": True},
            )
            return problem_response(body)
        results = await self.run_checks()
        checks = {result.name: result.as_dict() for result in results}
        failed = [r.name for r in results if not r.ok and r.critical]
        if failed:
            body = problem_body(
                503,
                title="Service Unavailable",
                code="not_ready",
                detail="failed readiness checks: " + ", ".join(failed),
                extra={"checks": checks},
            )
            return problem_response(body)
        status = "ok" if all(r.ok for r in results) else "degraded"
        content = json.dumps({"status": status, "checks": checks}, separators=(",", ":"))
        return Response(content, media_type="application/json")

    def router(
        self,
        *,
        liveness_path: str = "/healthz",
        readiness_path: str = "/readyz",
        include_in_schema: bool = False,
    ) -> APIRouter:
        """An `APIRouter` serving liveness and readiness for this registry."""
        router = APIRouter()
        self.add_routes(
            router,
            liveness_path=liveness_path,
            readiness_path=readiness_path,
            include_in_schema=include_in_schema,
        )
        return router

    def add_routes(
        self,
        target: FastAPI | APIRouter,
        *,
        liveness_path: str = "/healthz",
        readiness_path: str = "/readyz",
        include_in_schema: bool = False,
    ) -> None:
        """Add the liveness and readiness routes straight to an app or router.

        On recent FastAPI releases an included router is matched as a nested router, which
        costs every request routed after it; adding the two routes directly does not.
        """

        async def liveness() -> Response:
            return Response(_LIVE_BODY, media_type="application/json")

        async def readiness() -> Response:
            return await self.readiness()

        # Some load balancers probe with HEAD. One route serves both; in the schema, HEAD gets
        # its own hidden route so the two operations do not share an operation id.
        methods = ["GET"] if include_in_schema else ["GET", "HEAD"]
        for path, endpoint, name in (
            (liveness_path, liveness, "liveness"),
            (readiness_path, readiness, "readiness"),
        ):
            target.add_api_route(
                path,
                endpoint,
                methods=methods,
                name=name,
                include_in_schema=include_in_schema,
                tags=["health"],
            )
            if include_in_schema:
                target.add_api_route(
                    path, endpoint, methods=["HEAD"], name=f"{name}_head", include_in_schema=False
                )


def _nothing() -> None:
    return None


class InFlightMiddleware:
    """Counts in-flight HTTP requests so shutdown can wait for them (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, registry: HealthRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        registry = self.registry
        registry._request_started()
        try:
            await self.app(scope, receive, send)
        finally:
            registry._request_finished()


def get_health(app: Any) -> HealthRegistry:
    """The health registry `install()` put on `app`.

    Raises:
        ConfigurationError: the app has no chassis, or health is disabled.
    """
    registry = get_chassis(app).extensions.get("health")
    if not isinstance(registry, HealthRegistry):
        raise ConfigurationError(
            "health is disabled for this app; set CHASSIS_HEALTH__ENABLED=true to add checks"
        )
    return registry


def add_check(
    app: Any,
    name: str,
    fn: CheckFunction,
    *,
    critical: bool = True,
    timeout: float | None = None,
) -> None:
    """Register a readiness check on a chassis app (see `HealthRegistry.add_check`)."""
    get_health(app).add_check(name, fn, critical=critical, timeout=timeout)


def _drain_seconds(settings: ChassisSettings) -> float:
    if settings.health.drain_seconds is not None:
        return settings.health.drain_seconds
    return 0.0 if settings.environment in ("dev", "test") else 5.0


def install_health(app: FastAPI, settings: ChassisSettings) -> HealthRegistry | None:
    """Serve liveness/readiness, count in-flight requests and drain at shutdown.

    The registry lands at `chassis.extensions["health"]`. When `redis.url` is set, a critical
    "redis" check pings the shared-state store found at `chassis.extensions["state"]` (looked up
    at check time, so the store may be registered after this runs).
    """
    health = settings.health
    if not health.enabled:
        return None
    chassis = get_chassis(app)
    registry = HealthRegistry(
        check_timeout=health.check_timeout,
        drain_seconds=_drain_seconds(settings),
        shutdown_timeout=health.shutdown_timeout,
    )
    chassis.extensions["health"] = registry
    if settings.redis.url is not None:
        registry.add_check("redis", _state_ping(chassis.extensions))
    registry.add_routes(
        app,
        liveness_path=health.liveness_path,
        readiness_path=health.readiness_path,
        include_in_schema=health.include_in_schema,
    )
    chassis.add_middleware(InFlightMiddleware, registry=registry)
    # Drain before the app's own lifespan shuts down, so in-flight requests still have the
    # app's resources (database pools) while they finish.
    chassis.add_resource(registry.serving)
    chassis.add_before_shutdown(registry.drain)
    return registry


def _state_ping(extensions: dict[str, Any]) -> Callable[[], Awaitable[None]]:
    async def redis() -> None:
        store = extensions.get("state")
        if store is None:
            raise LookupError("no shared-state store registered")
        await store.ping()

    return redis
