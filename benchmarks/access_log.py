"""Per-request cost of the chassis' logging and access log against bare FastAPI.

Drives the ASGI apps in-process (no server, no sockets), so the numbers are the framework's and
the chassis' CPU cost per request. Lines are rendered in full and written to a stream that
discards them. Run: `PYTHONPATH=src python -m benchmarks.access_log [requests]`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI

from benchmarks.driver import time_requests
from fastapi_chassis import ChassisSettings, LoggingSettings
from fastapi_chassis.middleware.access_log import AccessLogMiddleware
from fastapi_chassis.observability import Logger, configure_logging


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


async def _drive(app: Any, path: str, n: int) -> float:
    return await time_requests(app, path, n, clock="wall")


def _bare() -> FastAPI:
    app = FastAPI()

    @app.get("/notes/{note_id}")
    async def note(note_id: int) -> dict[str, int]:
        return {"id": note_id}

    return app


def _with_access_log() -> FastAPI:
    app = _bare()
    app.add_middleware(AccessLogMiddleware)
    return app


def _with_access_log_and_handler_line() -> FastAPI:
    app = FastAPI()
    app.add_middleware(AccessLogMiddleware)

    @app.get("/notes/{note_id}")
    async def note(note_id: int, log: Logger) -> dict[str, int]:
        log.info("note read", note_id=note_id)
        return {"id": note_id}

    return app


def _measure(factories: dict[str, Callable[[], FastAPI]], n: int, rounds: int) -> dict[str, float]:
    """Best round per variant; variants alternate so background load hits them alike."""
    apps = {name: factory() for name, factory in factories.items()}
    loop = asyncio.new_event_loop()
    best = dict.fromkeys(apps, float("inf"))
    try:
        for app in apps.values():
            loop.run_until_complete(_drive(app, "/notes/1", 200))  # build stack, warm caches
        for _ in range(rounds):
            for name, app in apps.items():
                best[name] = min(best[name], loop.run_until_complete(_drive(app, "/notes/1", n)))
        return best
    finally:
        loop.close()


def _line_cost(log: Any, n: int) -> float:
    fields = {
        "method": "GET",
        "route": "/notes/{note_id}",
        "status": 200,
        "duration_ms": 1.234,
        "bytes": 9,
        "client": "127.0.0.1",
        "user_agent": "bench/1.0",
    }
    start = time.perf_counter()
    for _ in range(n):
        log.info("request", **fields)
    return (time.perf_counter() - start) / n * 1e6


def _stdlib_recipe_line_cost(n: int) -> float:
    """The common recipe: structlog -> stdlib logger -> ProcessorFormatter -> JSON."""
    handler = logging.StreamHandler(_Discard())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ]
        )
    )
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    try:
        return _line_cost(structlog.get_logger("recipe").bind(), n)
    finally:
        root.handlers[:] = saved


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = 9
    settings = ChassisSettings(logging=LoggingSettings(json_output=True))
    configure_logging(settings, stream=_Discard())

    best = _measure(
        {
            "bare FastAPI": _bare,
            "+ access log (JSON)": _with_access_log,
            "+ access log + one handler line": _with_access_log_and_handler_line,
        },
        n,
        rounds,
    )
    bare = best["bare FastAPI"]
    print(f"requests per variant: {n} x {rounds} rounds (best round), in-process ASGI")
    for name, cost in best.items():
        print(f"{name:36s} {cost:7.1f} us/request  {cost / bare:.2f}x  (+{cost - bare:.1f} us)")

    ours = min(
        _line_cost(structlog.get_logger("fastapi_chassis.access").bind(), n) for _ in range(rounds)
    )
    recipe = min(_stdlib_recipe_line_cost(n) for _ in range(rounds))
    print(f"one JSON access-log line, chassis chain      {ours:6.1f} us")
    print(f"one JSON access-log line, stdlib recipe      {recipe:6.1f} us  ({recipe / ours:.1f}x)")


if __name__ == "__main__":
    main()
