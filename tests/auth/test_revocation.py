"""Revocation and refresh-token reuse detection, in memory and on Redis (DB 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fastapi_chassis import (
    ChassisSettings,
    CurrentPrincipal,
    InvalidToken,
    RedisSettings,
    TokenService,
    build_app,
    get_token_service,
)
from fastapi_chassis.state import MemoryStore, RedisStore, StateStore, StateUnavailable, get_store
from fastapi_chassis.testing import mint_token
from tests.auth.conftest import Clock, auth_settings

REDIS_DB = 4

pytestmark = pytest.mark.anyio


async def rejected(service: TokenService, token: str, kind: Any = "access") -> str:
    with pytest.raises(InvalidToken) as info:
        await service.verify(token, kind=kind)
    return str(info.value.detail)


@pytest.fixture
def memory(clock: Clock) -> tuple[TokenService, MemoryStore]:
    store = MemoryStore(clock=clock)
    return TokenService(auth_settings(refresh_tokens=True), store=store, clock=clock), store


async def test_revoked_jti_is_rejected_until_the_token_expires(
    memory: tuple[TokenService, MemoryStore], clock: Clock
) -> None:
    service, store = memory
    token = service.issue_access_token("alice", ttl=120)
    claims = await service.verify(token)
    await service.revoke(claims["jti"], expires_at=claims["exp"])
    assert await rejected(service, token) == "token revoked"
    other = service.issue_access_token("alice")
    assert (await service.verify(other))["sub"] == "alice"
    # The entry lives as long as the token could still verify (exp + leeway), then goes.
    clock.advance(120 + 29)
    assert len(store) == 1
    assert await rejected(service, token) == "token revoked"
    clock.advance(2)
    assert len(store) == 0
    assert await rejected(service, token) == "token expired"


async def test_revoke_without_expiry_covers_the_longest_lifetime(
    memory: tuple[TokenService, MemoryStore], clock: Clock
) -> None:
    service, store = memory
    await service.revoke("some-jti")
    clock.advance(service.settings.refresh_token_ttl + service.settings.leeway - 1)
    assert len(store) == 1


async def test_refresh_reuse_revokes_the_family(memory: tuple[TokenService, MemoryStore]) -> None:
    service, _ = memory
    pair = service.issue_tokens("alice", scopes=["a"], claims={"tenant": "t1"})
    assert pair.refresh_token is not None
    rotated = await service.refresh(pair.refresh_token)
    assert rotated.refresh_token is not None
    new_claims = await service.verify(rotated.access_token)
    assert new_claims["tenant"] == "t1"
    assert new_claims["scope"] == "a"
    assert new_claims["fam"] == (await service.verify(pair.access_token))["fam"]

    assert "reused" in await rejected_refresh(service, pair.refresh_token)
    assert await rejected(service, rotated.access_token) == "token revoked"
    assert await rejected(service, rotated.refresh_token, kind="refresh") == "token revoked"


async def rejected_refresh(service: TokenService, token: str) -> str:
    with pytest.raises(InvalidToken) as info:
        await service.refresh(token)
    return str(info.value.detail)


async def test_revocation_check_can_be_turned_off(clock: Clock) -> None:
    service = TokenService(auth_settings(check_revocation=False), clock=clock)
    token = service.issue_access_token("alice")
    claims = service.decode(token)
    await service.revoke(claims["jti"], expires_at=claims["exp"])
    assert (await service.verify(token))["sub"] == "alice"


async def test_reuse_detection_holds_with_the_revocation_check_off(clock: Clock) -> None:
    service = TokenService(auth_settings(refresh_tokens=True, check_revocation=False), clock=clock)
    pair = service.issue_tokens("alice")
    assert pair.refresh_token is not None
    rotated = await service.refresh(pair.refresh_token)
    assert rotated.refresh_token is not None
    assert "reused" in await rejected_refresh(service, pair.refresh_token)
    assert await rejected_refresh(service, rotated.refresh_token) == "token revoked"


class DownStore(MemoryStore):
    async def exists(self, *keys: str) -> bool:
        raise StateUnavailable("the shared-state store (Redis) is unavailable")


async def test_verification_fails_closed_when_the_store_is_down(clock: Clock) -> None:
    service = TokenService(auth_settings(), store=DownStore(), clock=clock)
    with pytest.raises(StateUnavailable) as info:
        await service.verify(service.issue_access_token("alice"))
    assert info.value.status_code == 503


# -- Redis ----------------------------------------------------------------------------


@pytest.fixture
async def redis_url(redis_db_url: Callable[[int], str]) -> AsyncIterator[str]:
    from redis import asyncio as redis_asyncio

    url = redis_db_url(REDIS_DB)
    client = redis_asyncio.Redis.from_url(url)
    await client.flushdb()
    yield url
    await client.flushdb()
    await client.aclose()


def redis_store(url: str) -> StateStore:
    return RedisStore.from_settings(RedisSettings(url=SecretStr(url)), prefix="chassis:auth-test:")


@pytest.mark.redis
async def test_redis_revocation_is_seen_by_every_worker(redis_url: str) -> None:
    # Two services on one Redis stand for two worker processes.
    first_store, second_store = redis_store(redis_url), redis_store(redis_url)
    first = TokenService(auth_settings(refresh_tokens=True), store=first_store)
    second = TokenService(auth_settings(refresh_tokens=True), store=second_store)
    try:
        pair = first.issue_tokens("alice")
        assert pair.refresh_token is not None
        await first.revoke_claims(await first.verify(pair.access_token))
        assert await rejected(second, pair.access_token) == "token revoked"
        # The family is gone too, on the other worker.
        assert await rejected(second, pair.refresh_token, kind="refresh") == "token revoked"

        other = first.issue_tokens("bob")
        assert other.refresh_token is not None
        await second.refresh(other.refresh_token)
        assert "reused" in await rejected_refresh(first, other.refresh_token)
        assert await rejected(second, other.access_token) == "token revoked"
    finally:
        await first_store.aclose()
        await second_store.aclose()


@pytest.mark.redis
async def test_redis_revocation_entries_expire_with_the_token(redis_url: str) -> None:
    store = redis_store(redis_url)
    service = TokenService(auth_settings(), store=store)
    try:
        claims = await service.verify(service.issue_access_token("alice", ttl=100))
        await service.revoke(claims["jti"], expires_at=claims["exp"])
        assert isinstance(store, RedisStore)
        ttl_ms = await store.client.pttl(store.key(f"auth:revoked:{claims['jti']}"))
        assert 0 < ttl_ms <= (100 + service.settings.leeway) * 1000
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_an_app_with_redis_configured_revokes_through_it(redis_url: str) -> None:
    settings = ChassisSettings(auth=auth_settings(), redis=RedisSettings(url=SecretStr(redis_url)))
    app = build_app(settings)
    tokens = get_token_service(app)
    assert tokens.store is get_store(app)
    assert get_store(app).kind == "redis"
    try:
        token = tokens.issue_access_token("alice")
        await tokens.revoke_claims(tokens.decode(token))
        assert await rejected(tokens, token) == "token revoked"
    finally:
        await get_store(app).aclose()


def test_a_token_revoked_in_one_lifespan_stays_revoked_in_the_next() -> None:
    app = build_app(ChassisSettings(environment="test", auth=auth_settings()))

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"subject": principal.subject}

    tokens = get_token_service(app)
    token = mint_token(app, "alice")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        assert client.get("/me", headers=headers).status_code == 200
        client.portal.call(tokens.revoke_claims, tokens.decode(token))
        assert client.get("/me", headers=headers).status_code == 401
    with TestClient(app) as client:
        assert client.get("/me", headers=headers).status_code == 401
