"""Fixtures for the rate-limit tests. Redis tests use database 2 only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import SecretStr

from fastapi_chassis import ChassisSettings, RateLimitSettings, RedisSettings, build_app
from fastapi_chassis.ratelimit import rate_limit
from tests.conftest import FakeClock

REDIS_DB = 2


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def redis_url(redis_db_url: Callable[[int], str]) -> AsyncIterator[str]:
    """URL of this area's database, flushed before and after the test."""
    from redis.asyncio import Redis

    url = redis_db_url(REDIS_DB)
    client = Redis.from_url(url)
    await client.flushdb()
    try:
        yield url
    finally:
        await client.flushdb()
        await _close(client)


async def _close(client: Any) -> None:
    close = getattr(client, "aclose", None) or client.close
    await close()


def settings_for(
    default: str | None = "5/minute",
    *,
    redis_url: str | None = None,
    **rate_limit: Any,
) -> ChassisSettings:
    """Chassis settings with the global limit `default` (None: global limit off)."""
    redis = RedisSettings(url=SecretStr(redis_url)) if redis_url else RedisSettings()
    return ChassisSettings(
        service_name="ratelimit-tests",
        rate_limit=RateLimitSettings(
            enabled=default is not None, default=default or "100/minute", **rate_limit
        ),
        redis=redis,
    )


class Calls:
    def __init__(self) -> None:
        self.count = 0


def make_app(settings: ChassisSettings, calls: Calls | None = None) -> FastAPI:
    """A chassis app with `/ping` (global limit only) and `/login` (plus "3/minute")."""
    app = build_app(settings)
    counter = calls if calls is not None else Calls()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        counter.count += 1
        return {"pong": True}

    @app.post("/login", dependencies=[Depends(rate_limit("3/minute"))])
    async def login() -> dict[str, str]:
        counter.count += 1
        return {"token": "t"}

    return app


@asynccontextmanager
async def serve(
    app: FastAPI, client: tuple[str, int] = ("203.0.113.7", 4000)
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client for `app` with its lifespan running, as peer `client`."""
    transport = httpx.ASGITransport(app=app, client=client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield http
