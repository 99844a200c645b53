"""Fixtures for the error envelope tests.

`Decorating` gives every request a known request id; the real request-id and security-header
middleware (installed by `build_app`) sit outside the error boundary and decorate its responses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_chassis import ChassisSettings, build_app

REQUEST_ID = "req-7f3a"


class Decorating:
    """Sends every request with a known `X-Request-ID`, which the real middleware accepts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"x-request-id"]
            scope = {**scope, "headers": [*headers, (b"x-request-id", REQUEST_ID.encode())]}
        await self.app(scope, receive, send)


@pytest.fixture
def make_app() -> Callable[..., FastAPI]:
    """`make_app(settings=None, **fastapi_kwargs)`: `build_app` plus the decorating middleware."""

    def make(settings: ChassisSettings | None = None, **kwargs: Any) -> FastAPI:
        app = build_app(settings or ChassisSettings(environment="test"), **kwargs)
        # Outermost, where the real request-id and security-header middleware sit.
        app.user_middleware[0:0] = [Middleware(Decorating)]
        return app

    return make
