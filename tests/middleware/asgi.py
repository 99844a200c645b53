"""A raw ASGI driver for tests: exact headers, bodies fed chunk by chunk, chunks counted."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message

CHUNK = 64 * 1024


def chunks(total: int, size: int = CHUNK) -> Iterator[bytes]:
    """`total` bytes in `size` pieces; one chunk object reused, so memory stays flat."""
    piece = b"x" * size
    sent = 0
    while sent < total:
        step = min(size, total - sent)
        yield piece if step == size else piece[:step]
        sent += step


@dataclass
class Result:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    chunks_pulled: int = 0
    bytes_pulled: int = 0

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == key]

    def json(self) -> Any:
        return json.loads(self.body)


async def request(
    app: ASGIApp,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: Iterable[bytes] = (),
    scheme: str = "http",
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> Result:
    """Call `app` with one HTTP request; `body` pieces are handed out one `receive()` each."""
    result = Result()
    pieces = iter(body)
    pending = next(pieces, None)
    done = False

    async def receive() -> Message:
        nonlocal pending, done
        if done:
            return {"type": "http.disconnect"}
        if pending is None:
            done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        current = pending
        pending = next(pieces, None)
        result.chunks_pulled += 1
        result.bytes_pulled += len(current)
        if pending is None:
            done = True
        return {"type": "http.request", "body": current, "more_body": pending is not None}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": client,
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return result
