"""Shared state: a small store interface, in memory by default, Redis when configured.

Rate limits and token revocation keep their state here. The in-memory store is the embedded
default (one process, correct under asyncio concurrency); the Redis store lets many workers and
hosts share it. Every Redis call is bounded by the configured timeouts and failures surface as
`StateUnavailable`, so callers decide between failing open and failing closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from fastapi_chassis.errors import ConfigurationError, ServiceUnavailable
from fastapi_chassis.settings import ChassisSettings, RedisSettings

if TYPE_CHECKING:
    from fastapi_chassis._chassis import Chassis

__all__ = [
    "MemoryStore",
    "RedisStore",
    "StateStore",
    "StateUnavailable",
    "create_store",
    "get_store",
    "install_state",
]

T = TypeVar("T")


class StateUnavailable(ServiceUnavailable):
    """The shared-state store did not answer in time (or at all)."""

    code = "state_unavailable"
    title = "Shared state unavailable"


@runtime_checkable
class StateStore(Protocol):
    """What the building blocks need from shared state."""

    #: "memory" or "redis".
    kind: str

    async def set_if_absent(self, key: str, ttl: float) -> bool:
        """Create `key` for `ttl` seconds; False when it already existed (atomic)."""
        ...

    async def exists(self, *keys: str) -> bool:
        """Whether any of `keys` exists (one round trip)."""
        ...

    async def delete(self, *keys: str) -> None:
        """Remove `keys` (missing keys are ignored)."""
        ...

    async def ping(self) -> None:
        """Raise `StateUnavailable` unless the store answers."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryStore:
    """Process-local store; expiry by an injectable monotonic clock."""

    kind = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._expiry: dict[str, float] = {}
        self._writes = 0

    def _alive(self, key: str, now: float) -> bool:
        expires = self._expiry.get(key)
        if expires is None:
            return False
        if expires <= now:
            del self._expiry[key]
            return False
        return True

    def _sweep(self, now: float) -> None:
        # Amortised cleanup keeps memory bounded by live keys without a background task.
        self._writes += 1
        if self._writes % 1024 == 0:
            for key in [k for k, exp in self._expiry.items() if exp <= now]:
                del self._expiry[key]

    async def set_if_absent(self, key: str, ttl: float) -> bool:
        now = self.clock()
        self._sweep(now)
        if self._alive(key, now):
            return False
        self._expiry[key] = now + max(ttl, 0.001)
        return True

    async def exists(self, *keys: str) -> bool:
        now = self.clock()
        return any(self._alive(key, now) for key in keys)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._expiry.pop(key, None)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        # Nothing to release. Entries stay: the app keeps this store across lifespans (a
        # second TestClient block), and revocations and limits must survive a restart of it.
        return None

    def __len__(self) -> int:
        now = self.clock()
        return sum(1 for exp in self._expiry.values() if exp > now)


class RedisStore:
    """Redis-backed store (`redis.asyncio`); keys live under `prefix`."""

    kind = "redis"

    def __init__(self, client: Any, *, prefix: str, timeout: float) -> None:
        self.client = client
        self.prefix = prefix
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: RedisSettings, *, prefix: str) -> RedisStore:
        """Build a store with one connection pool from `settings` (needs the `redis` extra)."""
        if settings.url is None:
            raise ConfigurationError("RedisStore needs CHASSIS_REDIS__URL to be set")
        try:
            from redis import asyncio as redis_asyncio
        except ImportError as exc:
            raise ConfigurationError(
                "CHASSIS_REDIS__URL is set but the redis client is not installed: "
                'pip install "fastapi-chassis[redis]"'
            ) from exc
        timeout = settings.socket_timeout + settings.connect_timeout
        # A blocking pool queues callers for a free connection (within the call timeout)
        # instead of failing them when a burst outnumbers the pool.
        pool = redis_asyncio.BlockingConnectionPool.from_url(
            settings.url.get_secret_value(),
            max_connections=settings.max_connections,
            timeout=timeout,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            decode_responses=False,
        )
        return cls(redis_asyncio.Redis.from_pool(pool), prefix=prefix, timeout=timeout)

    def key(self, key: str) -> str:
        """The Redis key for a store key."""
        return self.prefix + key

    async def call(self, operation: Awaitable[T]) -> T:
        """Await a Redis operation within the timeout; failures become `StateUnavailable`."""
        try:
            return await asyncio.wait_for(operation, self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any client or network failure means "unavailable"
            raise StateUnavailable(
                "the shared-state store (Redis) is unavailable",
                extra={"reason": type(exc).__name__},
            ) from exc

    async def set_if_absent(self, key: str, ttl: float) -> bool:
        millis = max(int(ttl * 1000), 1)
        result = await self.call(self.client.set(self.key(key), b"1", nx=True, px=millis))
        return bool(result)

    async def exists(self, *keys: str) -> bool:
        if not keys:
            return False
        count = await self.call(self.client.exists(*(self.key(k) for k in keys)))
        return bool(count)

    async def delete(self, *keys: str) -> None:
        if keys:
            await self.call(self.client.delete(*(self.key(k) for k in keys)))

    async def ping(self) -> None:
        await self.call(self.client.ping())

    async def aclose(self) -> None:
        close = getattr(self.client, "aclose", None) or self.client.close
        await close()


def create_store(settings: ChassisSettings) -> StateStore:
    """The store the settings ask for: Redis when `redis.url` is set, else in memory."""
    if settings.redis.url is None:
        return MemoryStore()
    return RedisStore.from_settings(settings.redis, prefix=f"chassis:{settings.service_name}:")


def install_state(chassis: Chassis) -> StateStore:
    """Create the app's store, publish it as `chassis.extensions["state"]`, close it on shutdown."""
    store = create_store(chassis.settings)
    chassis.extensions["state"] = store

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await store.aclose()

    chassis.add_resource(lifespan)
    return store


def get_store(app: Any) -> StateStore:
    """The shared-state store of an app built with the chassis."""
    from fastapi_chassis._chassis import get_chassis

    store = get_chassis(app).extensions.get("state")
    if not isinstance(store, StateStore):
        raise ConfigurationError("this app has no shared-state store; build it with build_app()")
    return store
