"""Helpers for tests that read log lines: capture the chassis' log stream, set a request id."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_chassis import ChassisSettings, LoggingSettings
from fastapi_chassis._context import request_id_var
from fastapi_chassis.observability import configure_logging


class LogCapture:
    """JSON lines written by the chassis' logging since `configure()`."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def configure(self, settings: ChassisSettings | None = None) -> LogCapture:
        settings = settings or ChassisSettings(logging=LoggingSettings(json_output=True))
        self.stream = io.StringIO()
        configure_logging(settings, stream=self.stream)
        return self

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == event]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("logger") == "fastapi_chassis.access"]


def capture_logs() -> Iterator[LogCapture]:
    """Body of a `logs` fixture: a capture, then default logging restored."""
    yield LogCapture()
    configure_logging(ChassisSettings())


class SetRequestId:
    """Stand-in for the request-id middleware: the `x-request-id` header into the contextvar."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        value = None
        for name, raw in scope.get("headers", ()):
            if name == b"x-request-id":
                value = raw.decode()
        token = request_id_var.set(value)
        try:
            await self.app(scope, receive, send)
        finally:
            request_id_var.reset(token)


def rid(n: int) -> str:
    """A request id in the nginx style (32 hex digits) any request-id validator accepts."""
    return f"{n:032x}"
