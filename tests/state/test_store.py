from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fastapi_chassis import ChassisSettings, RedisSettings, build_app
from fastapi_chassis.state import (
    MemoryStore,
    RedisStore,
    StateStore,
    StateUnavailable,
    get_store,
)
from tests.conftest import FakeClock

REDIS_DB = 1  # this test area's dedicated database


def redis_settings(url: str) -> RedisSettings:
    # Generous timeouts: these tests check atomicity, not latency, on a shared 2-core machine.
    return RedisSettings(url=SecretStr(url), socket_timeout=2.0, connect_timeout=2.0)


@pytest.fixture
async def redis_store(redis_db_url: Callable[[int], str]) -> AsyncIterator[RedisStore]:
    url = redis_db_url(REDIS_DB)
    store = RedisStore.from_settings(redis_settings(url), prefix="test:")
    await store.client.flushdb()
    yield store
    await store.client.flushdb()
    await store.aclose()


@pytest.mark.anyio
async def test_memory_set_if_absent_is_atomic_under_concurrency() -> None:
    store = MemoryStore()
    results = await asyncio.gather(*(store.set_if_absent("jti", 60) for _ in range(200)))
    assert results.count(True) == 1


@pytest.mark.anyio
async def test_memory_keys_expire_by_clock() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    assert await store.set_if_absent("a", 10)
    assert await store.exists("a", "b")
    clock.now += 10
    assert not await store.exists("a")
    assert await store.set_if_absent("a", 10)
    await store.delete("a")
    assert not await store.exists("a")


@pytest.mark.anyio
async def test_memory_store_keeps_its_entries_when_closed() -> None:
    store = MemoryStore()
    assert await store.set_if_absent("revoked", 60)
    await store.aclose()  # end of one lifespan; the app keeps using the same store
    assert await store.exists("revoked")
    assert not await store.set_if_absent("revoked", 60)


@pytest.mark.anyio
async def test_memory_store_stays_bounded_by_live_keys() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(5000):
        await store.set_if_absent(f"k{i}", 1)
        clock.now += 0.01
    assert len(store) <= 101
    assert len(store._expiry) < 1200


@pytest.mark.anyio
@pytest.mark.redis
async def test_redis_set_if_absent_once_across_two_clients(
    redis_store: RedisStore, redis_db_url: Callable[[int], str]
) -> None:
    other = RedisStore.from_settings(redis_settings(redis_db_url(REDIS_DB)), prefix="test:")
    try:
        results = await asyncio.gather(
            *(s.set_if_absent("jti", 30) for s in [redis_store, other] * 50)
        )
        assert results.count(True) == 1
        assert await other.exists("missing", "jti")
    finally:
        await other.aclose()


@pytest.mark.anyio
@pytest.mark.redis
async def test_redis_keys_get_expiry(redis_store: RedisStore) -> None:
    await redis_store.set_if_absent("ttl", 0.2)
    ttl_ms = await redis_store.client.pttl("test:ttl")
    assert 0 < ttl_ms <= 200
    await asyncio.sleep(0.3)
    assert not await redis_store.exists("ttl")


@pytest.mark.anyio
async def test_unreachable_redis_raises_state_unavailable_within_timeout() -> None:
    settings = RedisSettings(
        url=SecretStr("redis://127.0.0.1:1/0"), socket_timeout=0.2, connect_timeout=0.2
    )
    store = RedisStore.from_settings(settings, prefix="x:")
    try:
        with pytest.raises(StateUnavailable) as info:
            await asyncio.wait_for(store.ping(), 5)
        assert info.value.status_code == 503
    finally:
        await store.aclose()


def test_app_gets_memory_store_by_default_and_redis_when_configured() -> None:
    app = build_app(ChassisSettings())
    assert isinstance(get_store(app), MemoryStore)
    assert isinstance(get_store(app), StateStore)
    redis_app = build_app(
        ChassisSettings(redis=RedisSettings(url=SecretStr("redis://127.0.0.1:1")))
    )
    store = get_store(redis_app)
    assert isinstance(store, RedisStore)
    with TestClient(redis_app):
        pass  # lifespan closes the pool without having connected


def test_missing_redis_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from fastapi_chassis import ConfigurationError

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match=r"fastapi-chassis\[redis\]"):
        build_app(ChassisSettings(redis=RedisSettings(url=SecretStr("redis://127.0.0.1:6379"))))
