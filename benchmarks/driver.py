"""In-process driver: raw ASGI calls (no sockets, no HTTP client) so only the app's cost counts.

Run one app per process (module state such as Prometheus registries and logging config is
process-wide):

    python -m benchmarks.driver chassis --routes 60 --requests 5000 --out result.json

The app's lifespan runs first. Every route gets one checked request (status and body are
recorded, so the runner can compare apps), then a warm-up, then `--requests` timed requests
in five batches (the fastest batch counts).
Log lines the app writes to stdout go to /dev/null unless `--show-logs` is given, so every
app pays for formatting and writing its lines but the terminal does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.apps import BENCH_ROUTE_COUNT, build
from benchmarks.chassis_app import fingerprint

ASGI = {"version": "3.0", "spec_version": "2.4"}


@dataclass(frozen=True)
class RouteCase:
    """One benchmarked request."""

    label: str
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    status: int = 200


def route_cases(token: str) -> list[RouteCase]:
    """The four requests every app answers identically."""
    post_body = json.dumps(
        {"name": "widget", "price": 12.5, "tags": ["x", "y"], "in_stock": True, "quantity": 3}
    ).encode()
    return [
        RouteCase("GET /items/{id}", "GET", "/items/42"),
        RouteCase("GET /items", "GET", "/items"),
        RouteCase(
            "POST /items",
            "POST",
            "/items",
            post_body,
            (
                (b"content-type", b"application/json"),
                (b"content-length", str(len(post_body)).encode()),
            ),
            201,
        ),
        RouteCase(
            "GET /me", "GET", "/me", headers=((b"authorization", f"Bearer {token}".encode()),)
        ),
    ]


BASE_HEADERS = (
    (b"host", b"bench.local"),
    (b"user-agent", b"chassis-bench/1"),
    (b"accept", b"*/*"),
)


class Exchange:
    """receive/send for one request: the body in one message, then disconnect after the reply."""

    __slots__ = ("body_message", "chunks", "done", "headers", "status")

    def __init__(self, body: bytes) -> None:
        self.body_message: dict[str, Any] | None = {
            "type": "http.request",
            "body": body,
            "more_body": False,
        }
        self.done = asyncio.Event()
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []

    async def receive(self) -> dict[str, Any]:
        message = self.body_message
        if message is not None:
            self.body_message = None
            return message
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
        elif kind == "http.response.body":
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.done.set()


def make_scope(case: RouteCase, state: dict[str, Any] | None) -> dict[str, Any]:
    path, _, query = case.path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": ASGI,
        "http_version": "1.1",
        "method": case.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [*BASE_HEADERS, *case.headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    if state is not None:
        scope["state"] = state
    return scope


class Lifespan:
    """Runs the app's lifespan protocol around the benchmark, like a server would."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _expect(self, wanted: str) -> None:
        assert self.task is not None
        getter = asyncio.ensure_future(self.from_app.get())
        await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            self.task.result()  # re-raises the app's exception
            raise RuntimeError(f"lifespan ended without {wanted}")
        message = getter.result()
        if message["type"] != wanted:
            raise RuntimeError(f"lifespan: {message['type']}: {message.get('message', '')}")

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}
        self.task = asyncio.ensure_future(self.app(scope, self.to_app.get, self.from_app.put))
        await self.to_app.put({"type": "lifespan.startup"})
        await self._expect("lifespan.startup.complete")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.to_app.put({"type": "lifespan.shutdown"})
        await self._expect("lifespan.shutdown.complete")
        assert self.task is not None
        await self.task


# --- shared by the micro-benchmarks (benchmarks/middleware.py, access_log.py, ...) ---------


def http_scope(
    path: str,
    *,
    method: str = "GET",
    headers: tuple[tuple[bytes, bytes], ...] = BASE_HEADERS,
    client: str = "127.0.0.1",
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A fresh HTTP scope for one request, as a server would build it."""
    path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": ASGI,
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": list(headers),
        "client": (client, 50000),
        "server": ("127.0.0.1", 8000),
    }
    if state is not None:
        scope["state"] = dict(state)
    return scope


_EMPTY_BODY: dict[str, Any] = {"type": "http.request", "body": b"", "more_body": False}


async def _receive_empty() -> dict[str, Any]:
    return _EMPTY_BODY


async def time_requests(
    app: Any,
    scope: Callable[[int], dict[str, Any]] | str,
    n: int,
    *,
    status: int | None = 200,
    clock: str = "cpu",
) -> float:
    """Microseconds per request of `n` sequential bodiless requests (no warm-up).

    `scope` is a path, or a function of the request's index returning its scope (to vary the
    client, say). The clock is the process' CPU time ("cpu") or wall time ("wall"). Every
    response must have `status` (None: any).
    """
    make = (lambda _: http_scope(scope)) if isinstance(scope, str) else scope
    statuses: set[int] = set()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    timer = time.process_time_ns if clock == "cpu" else time.perf_counter_ns
    start = timer()
    for i in range(n):
        await app(make(i), _receive_empty, send)
    elapsed = timer() - start
    if status is not None and statuses - {status}:
        raise RuntimeError(f"expected {status}, got {sorted(statuses)}")
    return elapsed / n / 1000


async def compare_async(
    apps: dict[str, Any], path: str, *, n: int = 2000, rounds: int = 15, clock: str = "cpu"
) -> dict[str, float]:
    """Best round's microseconds per request of GET `path` for each app, apps taking turns.

    Each app's lifespan runs around the measurement; every app is warmed up first.
    """
    best = dict.fromkeys(apps, float("inf"))
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(Lifespan(app))
            await time_requests(app, path, 300)
        # Variants take turns in every round, so machine noise hits them all alike.
        for _ in range(rounds):
            for name, app in apps.items():
                best[name] = min(best[name], await time_requests(app, path, n, clock=clock))
    return best


def compare(
    apps: dict[str, Any], path: str, *, n: int = 2000, rounds: int = 15, clock: str = "cpu"
) -> dict[str, float]:
    """`compare_async` in a fresh event loop."""
    return asyncio.run(compare_async(apps, path, n=n, rounds=rounds, clock=clock))


# --- the main harness' in-process run -----------------------------------------------------


async def one_request(app: Any, case: RouteCase, state: dict[str, Any] | None) -> Exchange:
    exchange = Exchange(case.body)
    scope = make_scope(case, None if state is None else dict(state))
    await app(scope, exchange.receive, exchange.send)
    return exchange


async def time_route(
    app: Any, case: RouteCase, state: dict[str, Any] | None, n: int, batches: int = 5
) -> tuple[float, float]:
    """(CPU, wall) microseconds per request: `n` requests in `batches`, the fastest batch's.

    CPU time is the process' own (all threads, user + system), so other processes sharing the
    machine inflate it far less than wall time; the fastest batch is the least disturbed one.
    The runner then reports the spread of these figures across fresh processes and rounds.
    """
    for _ in range(min(200, max(1, n // 5))):
        await one_request(app, case, state)
    template = make_scope(case, None)
    headers = template["headers"]
    batches = max(1, min(batches, n))
    size = n // batches
    best_cpu = best_wall = float("inf")
    errors = 0
    for _ in range(batches):
        cpu_start = time.process_time_ns()
        start = time.perf_counter_ns()
        for _ in range(size):
            exchange = Exchange(case.body)
            scope = dict(template)
            scope["headers"] = list(headers)
            if state is not None:
                scope["state"] = dict(state)
            await app(scope, exchange.receive, exchange.send)
            if exchange.status != case.status:
                errors += 1
        wall = time.perf_counter_ns() - start
        cpu = time.process_time_ns() - cpu_start
        best_wall = min(best_wall, wall / size / 1000)
        best_cpu = min(best_cpu, cpu / size / 1000)
    if errors:
        raise RuntimeError(f"{case.label}: {errors} requests answered != {case.status}")
    return best_cpu, best_wall


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("latin-1")


async def run(variant: str, routes: int, requests: int, auth: str) -> dict[str, Any]:
    """Build, start, check and time one app; the result as JSON-ready data."""
    built = build(variant, routes=routes, auth=auth)
    app = built.app
    result: dict[str, Any] = {
        "variant": variant,
        "routes": routes,
        "requests": requests,
        "notes": built.notes,
        "fingerprint": fingerprint(app),
        "checks": {},
        "us": {},
        "wall_us": {},
    }
    async with Lifespan(app) as lifespan:
        cases = route_cases(built.mint())
        state = lifespan.state or None
        for case in cases:
            exchange = await one_request(app, case, state)
            result["checks"][case.label] = {
                "status": exchange.status,
                "expected": case.status,
                "body": _decode(b"".join(exchange.chunks)),
                "headers": sorted({k.decode("latin-1").lower() for k, _ in exchange.headers}),
            }
        if requests > 0:
            for case in cases:
                if result["checks"][case.label]["status"] != case.status:
                    continue
                cpu, wall = await time_route(app, case, state, requests)
                result["us"][case.label] = cpu
                result["wall_us"][case.label] = wall
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.driver", description=__doc__)
    parser.add_argument("variant", help="bare | popular | chassis | chassis:<comp>,<comp>")
    parser.add_argument("--routes", type=int, default=BENCH_ROUTE_COUNT)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per route")
    parser.add_argument("--auth", choices=["auto", "pyjwt", "uncached"], default="auto")
    parser.add_argument("--out", help="write the JSON result here (default: stdout)")
    parser.add_argument("--show-logs", action="store_true", help="keep the app's stdout")
    args = parser.parse_args(argv)

    real_stdout = sys.stdout
    devnull = None
    if not args.show_logs:
        devnull = open(os.devnull, "w")  # noqa: SIM115
        sys.stdout = devnull
    try:
        result = asyncio.run(run(args.variant, args.routes, args.requests, args.auth))
    except Exception as exc:
        result = {
            "variant": args.variant,
            "routes": args.routes,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    finally:
        sys.stdout = real_stdout
        if devnull is not None:
            devnull.close()
    text = json.dumps(result, indent=1, default=str)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
