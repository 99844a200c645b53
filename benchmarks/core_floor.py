"""The core stack against the least its per-request work can cost: a fixed hand-written layer.

    python -m benchmarks.core_floor [--rounds 12] [--requests 2000]

Four apps serve the benchmark's routes, in one process, taking turns every round (CPU time,
the fastest of five batches, the best round; ratios against bare FastAPI from the same run):

- bare FastAPI;
- bare FastAPI + `FixedCore`, a pure-ASGI layer written for this comparison that does the
  core stack's unavoidable work with everything fixed: the in-flight count, a UUIDv7 request
  id (the chassis' own minting) in the scope state and the context variable, nine fixed
  security headers and the id appended to every response, body bytes counted against 1 MiB,
  and a response-started flag as an error boundary needs;
- the chassis core stack (`build_app()` with request id, security headers, body limit and
  error boundary on, the other blocks off);
- the same without the body limit.

What `FixedCore` leaves out is what the chassis pays for being configurable and exact: an
incoming id accepted only when valid, the authenticated subject kept from leaking into the
caller's context, the docs pages' own CSP, HSTS only over https (or from trusted proxies),
no duplicate of a header the app set itself, a malformed `Content-Length` answered with 400,
per-route limits (`body_limit()`, FastAPI's `max_body_size=`), a declared oversized body
refused before the handler runs or its response replaced by the 413, and problem+json
answers. The gap between the `FixedCore` row and the chassis rows is their price; see the
performance page.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import Any

from benchmarks.apps import build
from benchmarks.driver import Lifespan, route_cases, time_route
from fastapi_chassis._context import request_id_var
from fastapi_chassis.middleware.request_id import new_request_id

CORE = "chassis:request_id,security_headers,body_limit,error_boundary"
CORE_NO_LIMIT = "chassis:request_id,security_headers,error_boundary"
ROUTES = ("GET /items/{id}", "GET /items", "POST /items")
LIMIT = 1024 * 1024
HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=()"),
    (b"x-permitted-cross-domain-policies", b"none"),
    (b"cache-control", b"no-store"),
)


class TooLarge(Exception):
    pass


class FixedCore:
    """The core stack's per-request work with nothing configurable (see the module text)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.in_flight = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        request_id = new_request_id()
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        pair = (b"x-request-id", request_id.encode("ascii"))
        started = False
        received = 0

        def send_decorated(message: Any) -> Any:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), *HEADERS, pair]
            return send(message)

        async def receive_counted() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > LIMIT:
                raise TooLarge
            return message

        # A boundary would catch here and read `started`; `try` costs nothing on success.
        try:
            await self.app(scope, receive_counted, send_decorated)
        finally:
            request_id_var.reset(token)
            self.in_flight -= 1


def _app(variant: str) -> Any:
    if variant == "fixed":
        built = build("bare")
        built.app.add_middleware(FixedCore)
        return built
    return build(variant)


async def measure(rounds: int, requests: int) -> dict[tuple[str, str], float]:
    variants = ("bare", "fixed", CORE, CORE_NO_LIMIT)
    best: dict[tuple[str, str], float] = {}
    async with contextlib.AsyncExitStack() as stack:
        apps: dict[str, tuple[Any, dict[str, Any], dict[str, Any] | None]] = {}
        for variant in variants:
            built = _app(variant)
            lifespan = await stack.enter_async_context(Lifespan(built.app))
            cases = {case.label: case for case in route_cases(built.mint())}
            apps[variant] = (built.app, cases, lifespan.state or None)
        for _ in range(rounds):
            for route in ROUTES:
                for variant in variants:
                    app, cases, state = apps[variant]
                    cpu, _wall = await time_route(app, cases[route], state, requests)
                    key = (variant, route)
                    best[key] = min(best.get(key, cpu), cpu)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.core_floor", description=__doc__)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - log lines cost, the terminal does not
    try:
        best = asyncio.run(measure(args.rounds, args.requests))
    finally:
        sys.stdout.close()
        sys.stdout = real_stdout
    labels = {
        "bare": "bare FastAPI",
        "fixed": "bare + FixedCore (fixed, hand-written)",
        CORE: "chassis core stack",
        CORE_NO_LIMIT: "chassis core stack without body limit",
    }
    print(f"CPU µs per request, best of {args.rounds} rounds; % = bare's requests/s share")
    print(f"| app | {' | '.join(f'`{route}`' for route in ROUTES)} |")
    print(f"|---|{'---:|' * len(ROUTES)}")
    for variant, label in labels.items():
        cells = []
        for route in ROUTES:
            us, bare = best[(variant, route)], best[("bare", route)]
            cells.append(f"{us:.1f} ({100 * bare / us:.0f} %)")
        print(f"| {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
