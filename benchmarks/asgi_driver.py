"""An in-process ASGI driver for benchmarks: no sockets, no HTTP parsing, just the app.

`compare(apps, path)` runs each app's lifespan, warms it up, then times `n` sequential GET
requests per app per round, the apps taking turns, and keeps each app's best round.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message


def http_scope(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"accept", b"*/*"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }


async def _one(app: ASGIApp, path: str) -> int:
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(http_scope(path), receive, send)
    return status


async def _lifespan(app: ASGIApp) -> None:
    messages = [{"type": "lifespan.startup"}]

    async def receive() -> Message:
        return messages.pop(0) if messages else await asyncio.Event().wait()  # type: ignore[func-returns-value]

    async def send(message: Message) -> None:
        return None

    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    )
    await asyncio.sleep(0.01)
    task.cancel()


async def _time(app: ASGIApp, path: str, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await _one(app, path)
    return (time.perf_counter() - start) / n


async def _compare(apps: dict[str, ASGIApp], path: str, n: int, rounds: int) -> dict[str, float]:
    for app in apps.values():
        await _lifespan(app)
        for _ in range(300):
            status = await _one(app, path)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
    best = dict.fromkeys(apps, float("inf"))
    # Variants take turns in every round, so machine noise hits them all alike.
    for _ in range(rounds):
        for name, app in apps.items():
            best[name] = min(best[name], await _time(app, path, n))
    return best


def compare(
    apps: dict[str, ASGIApp], path: str, *, n: int = 2000, rounds: int = 15
) -> dict[str, float]:
    """Seconds per request (best round) of GET `path` for each app."""
    return asyncio.run(_compare(apps, path, n, rounds))
