"""Fixtures for the error envelope tests.

`Decorating` stands in for the request-id and security-header middleware: like them it sits
outside the error boundary, sets the request id contextvar and adds headers to every response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis import ChassisSettings, build_app
from fastapi_chassis._context import request_id_var

REQUEST_ID = "req-7f3a"


class Decorating:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def decorate(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", REQUEST_ID.encode()),
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        token = request_id_var.set(REQUEST_ID)
        try:
            await self.app(scope, receive, decorate)
        finally:
            request_id_var.reset(token)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_app() -> Callable[..., FastAPI]:
    """`make_app(settings=None, **fastapi_kwargs)`: `build_app` plus the decorating middleware."""

    def make(settings: ChassisSettings | None = None, **kwargs: Any) -> FastAPI:
        app = build_app(settings or ChassisSettings(environment="test"), **kwargs)
        # Outermost, where the real request-id and security-header middleware sit.
        app.user_middleware[0:0] = [Middleware(Decorating)]
        return app

    return make
