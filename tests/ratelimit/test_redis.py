from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import anyio
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from fastapi_chassis import RedisSettings
from fastapi_chassis.ratelimit import (
    RateLimitEvent,
    RedisLimiter,
    add_rate_limit_listener,
    get_rate_limiting,
    parse_limits,
)
from fastapi_chassis.state import RedisStore, get_store
from tests.ratelimit.conftest import Calls, make_app, serve, settings_for

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
async def limiter(redis_url: str) -> AsyncIterator[RedisLimiter]:
    store = RedisStore.from_settings(RedisSettings(url=SecretStr(redis_url)), prefix="t:")
    try:
        yield RedisLimiter(store)
    finally:
        await store.aclose()


async def test_exactly_n_admitted_then_rejected(limiter: RedisLimiter) -> None:
    limits = parse_limits("5/minute")
    decisions = [await limiter.hit("p", "alice", limits) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.statuses[0].remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert 59 < decisions[-1].retry_after <= 60
    assert (await limiter.hit("p", "bob", limits)).allowed


async def test_window_resets_on_redis_time(limiter: RedisLimiter) -> None:
    limits = parse_limits("5/second")
    for _ in range(5):
        assert (await limiter.hit("p", "k", limits)).allowed
    rejected = await limiter.hit("p", "k", limits)
    assert not rejected.allowed
    await asyncio.sleep(rejected.retry_after + 0.05)
    assert (await limiter.hit("p", "k", limits)).allowed


async def test_rejection_by_one_limit_charges_none_of_the_others(limiter: RedisLimiter) -> None:
    limits = parse_limits("2/second;5/hour")
    assert (await limiter.hit("p", "k", limits)).allowed
    assert (await limiter.hit("p", "k", limits)).allowed
    for _ in range(5):
        blocked = await limiter.hit("p", "k", limits)
        assert not blocked.allowed
    assert [s.remaining for s in blocked.statuses] == [0, 3]
    assert 0 < blocked.retry_after <= 1


async def test_logs_expire_and_never_hold_the_raw_key(limiter: RedisLimiter) -> None:
    await limiter.hit("login", "x-api-key:s3cret", parse_limits("3/second;10/minute"))
    keys = sorted(await limiter.store.client.keys("t:rl:*"))
    assert len(keys) == 2
    assert all(b"s3cret" not in key for key in keys)
    ttls = [await limiter.store.client.pttl(key) for key in keys]
    assert 0 < ttls[0] <= 1000
    assert 1000 < ttls[1] <= 60_000


async def test_script_is_reloaded_after_the_server_forgets_it(limiter: RedisLimiter) -> None:
    limits = parse_limits("2/minute")
    assert (await limiter.hit("p", "k", limits)).allowed
    await limiter.store.client.script_flush()
    assert (await limiter.hit("p", "k", limits)).allowed
    assert not (await limiter.hit("p", "k", limits)).allowed


async def _burst(apps: list[FastAPI], total: int) -> list[int]:
    async with serve(apps[0]) as first, serve(apps[-1]) as second:
        clients = [first, second]
        responses = await asyncio.gather(
            *(clients[i % len(apps)].get("/ping") for i in range(total))
        )
    return [r.status_code for r in responses]


async def test_200_concurrent_requests_admit_exactly_50(redis_url: str) -> None:
    app = make_app(settings_for("50/minute", redis_url=redis_url))
    assert isinstance(get_rate_limiting(app).limiter, RedisLimiter)
    statuses = await _burst([app], 200)
    assert statuses.count(200) == 50
    assert statuses.count(429) == 150


async def test_two_app_instances_sharing_redis_admit_50_in_total(redis_url: str) -> None:
    first = make_app(settings_for("50/minute", redis_url=redis_url))
    second = make_app(settings_for("50/minute", redis_url=redis_url))
    assert get_store(first) is not get_store(second)
    statuses = await _burst([first, second], 200)
    assert statuses.count(200) == 50
    assert statuses.count(429) == 150


async def test_headers_from_redis_decisions(redis_url: str) -> None:
    app = make_app(settings_for("2/minute", redis_url=redis_url))
    async with serve(app) as http:
        allowed = await http.get("/ping")
        await http.get("/ping")
        rejected = await http.get("/ping")
    assert allowed.headers["RateLimit-Policy"] == '"default";q=2;w=60'
    assert allowed.headers["RateLimit"] == '"default";r=1;t=60'
    assert rejected.status_code == 429
    assert rejected.headers["RateLimit"] == '"default";r=0;t=60'
    assert rejected.headers["Retry-After"] == "60"


async def _stop_redis(app: FastAPI) -> None:
    """Point the app's pool at a closed port, as if Redis went away."""
    from redis.asyncio import BlockingConnectionPool

    client = get_store(app).client  # type: ignore[attr-defined]
    old = client.connection_pool
    client.connection_pool = BlockingConnectionPool.from_url(
        "redis://127.0.0.1:1/2", socket_timeout=0.2, socket_connect_timeout=0.2, timeout=0.4
    )
    await old.disconnect()


@pytest.mark.parametrize("fail_open", [True, False])
async def test_redis_stopping_mid_test_fails_per_setting_within_the_timeout(
    redis_url: str, fail_open: bool, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    app = make_app(settings_for("50/minute", redis_url=redis_url, fail_open=fail_open), calls)
    events: list[RateLimitEvent] = []
    add_rate_limit_listener(app, events.append)
    async with serve(app) as http:
        assert (await http.get("/ping")).status_code == 200
        await _stop_redis(app)
        with caplog.at_level(logging.WARNING, "fastapi_chassis.ratelimit"), anyio.fail_after(10):
            responses = [await http.get("/ping") for _ in range(3)]
            login = await http.post("/login")
    if fail_open:
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert login.status_code == 200
        assert "RateLimit" not in responses[0].headers
        assert calls.count == 5
    else:
        assert [r.status_code for r in responses] == [503, 503, 503]
        assert responses[0].headers["content-type"] == "application/problem+json"
        assert responses[0].json()["code"] == "rate_limit_unavailable"
        assert responses[0].headers["Retry-After"] == "1"
        assert login.status_code == 503
        assert login.json()["code"] == "rate_limit_unavailable"
        assert calls.count == 1
    warnings = [r for r in caplog.records if r.name == "fastapi_chassis.ratelimit"]
    assert len(warnings) == 1
    assert ("open" if fail_open else "closed") in warnings[0].getMessage()
    # /login passes the global limit first; its own limit is only reached when that let it by.
    expected = [RateLimitEvent("store_unavailable", "default", fail_open)] * 4
    if fail_open:
        expected.append(RateLimitEvent("store_unavailable", "/login", fail_open))
    assert events == expected


async def test_a_redis_that_never_answers_cannot_hang_a_request() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = settings_for("5/minute", redis_url=f"redis://127.0.0.1:{port}/2")
    settings.redis.socket_timeout = 0.1
    settings.redis.connect_timeout = 0.1
    app = make_app(settings)
    try:
        async with serve(app) as http:
            with anyio.fail_after(10):
                response = await http.get("/ping")
    finally:
        server.close()
    assert response.status_code == 200
