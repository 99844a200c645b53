"""Per-request cost of the error boundary on the success path and on a crash.

Run: `PYTHONPATH=src python -m benchmarks.error_boundary`. Prints microseconds per request for a
bare ASGI app, the same app behind the boundary (alone and with the problem type base), and a
crash rendered as a 500 problem (logging to a discarded handler).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.types import Receive, Scope, Send

from benchmarks.driver import time_requests
from fastapi_chassis._error_boundary import ErrorBoundaryMiddleware, ProblemTypeBaseMiddleware

N = 20_000
SCOPE: dict[str, Any] = {"type": "http", "method": "GET", "path": "/", "headers": []}


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def crash_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("boom")


async def per_request_us(app: Any, n: int = N) -> float:
    return await time_requests(app, lambda _: dict(SCOPE), n, status=None, clock="wall")


async def main() -> None:
    logger = logging.getLogger("fastapi_chassis.errors")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    cases = {
        "bare app": ok_app,
        "boundary": ErrorBoundaryMiddleware(ok_app, handlers={}),
        "type base + boundary": ProblemTypeBaseMiddleware(
            ErrorBoundaryMiddleware(ok_app, handlers={}), base_url="https://errors.example.com/"
        ),
        "crash -> 500 problem": ErrorBoundaryMiddleware(crash_app, handlers={}),
    }
    for name, app in cases.items():
        await per_request_us(app, 1000)
        print(f"{name:24} {await per_request_us(app):7.2f} us/request")


if __name__ == "__main__":
    asyncio.run(main())
