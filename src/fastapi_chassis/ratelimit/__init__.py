"""Rate limiting: a global middleware and per-route dependencies over memory or Redis.

    from fastapi import Depends
    from fastapi_chassis.ratelimit import rate_limit

    @app.post("/token", dependencies=[Depends(rate_limit("5/minute"))])
    async def token(): ...

See `backends` for the algorithm (an exact sliding window) and `keys` for who is counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi_chassis._proxy import TrustedProxies
from fastapi_chassis.errors import ConfigurationError
from fastapi_chassis.ratelimit._limits import Limit, parse_limits
from fastapi_chassis.ratelimit._runtime import RateLimitEvent, RateLimiting, RateLimitListener
from fastapi_chassis.ratelimit.backends import (
    Decision,
    LimitStatus,
    MemoryLimiter,
    RateLimiter,
    RedisLimiter,
    create_limiter,
)
from fastapi_chassis.ratelimit.dependencies import rate_limit
from fastapi_chassis.ratelimit.keys import KeyFunc, by_client_ip, by_header, by_subject, ip_key
from fastapi_chassis.ratelimit.middleware import RateLimitMiddleware

if TYPE_CHECKING:
    from fastapi_chassis._chassis import Chassis

__all__ = [
    "Decision",
    "KeyFunc",
    "Limit",
    "LimitStatus",
    "MemoryLimiter",
    "RateLimitEvent",
    "RateLimitListener",
    "RateLimitMiddleware",
    "RateLimiter",
    "RateLimiting",
    "RedisLimiter",
    "add_rate_limit_listener",
    "by_client_ip",
    "by_header",
    "by_subject",
    "create_limiter",
    "get_rate_limiting",
    "install_rate_limit",
    "ip_key",
    "parse_limits",
    "rate_limit",
]


def install_rate_limit(chassis: Chassis) -> RateLimiting:
    """Publish the app's rate-limit runtime and, when enabled, add the global middleware.

    The runtime (`chassis.extensions["ratelimit"]`) serves `rate_limit(...)` dependencies even
    when the global limit is off. Its limiter uses the app's shared-state store: Redis when
    `redis.url` is set, else memory.

    Raises:
        ConfigurationError: the default limit or a trusted proxy cannot be parsed.
    """
    from fastapi_chassis.state import StateStore

    settings = chassis.settings
    config = settings.rate_limit
    store = chassis.extensions.get("state")
    runtime = RateLimiting(
        limiter=create_limiter(store, max_keys=config.memory_max_keys)
        if isinstance(store, StateStore)
        else MemoryLimiter(max_keys=config.memory_max_keys),
        proxies=TrustedProxies.from_settings(settings),
        exempt_keys=frozenset(config.exempt_keys),
        ipv6_prefix=config.ipv6_prefix,
        fail_open=config.fail_open,
        legacy_headers=config.legacy_headers,
        problem_type_base=settings.errors.type_base_url,
        warn_interval=config.warn_interval,
    )
    chassis.extensions["ratelimit"] = runtime
    if not config.enabled:
        return runtime
    limits = parse_limits(config.default, setting=settings.env_var("rate_limit", "default"))
    exempt = config.exempt_paths
    if exempt is None:
        exempt = [
            settings.health.liveness_path,
            settings.health.readiness_path,
            settings.metrics.path,
        ]
    chassis.add_middleware(
        RateLimitMiddleware, limits=limits, runtime=runtime, key=by_client_ip, exempt_paths=exempt
    )
    return runtime


def get_rate_limiting(app: Any) -> RateLimiting:
    """The rate-limit runtime of a chassis app (its limiter, options and listeners)."""
    from fastapi_chassis._chassis import get_chassis

    runtime = get_chassis(app).extensions.get("ratelimit")
    if not isinstance(runtime, RateLimiting):
        raise ConfigurationError("this app has no rate limiting; build it with build_app()")
    return runtime


def add_rate_limit_listener(app: Any, listener: RateLimitListener) -> None:
    """Call `listener(event)` on every rejection and store failure (e.g. to count a metric)."""
    get_rate_limiting(app).listeners.append(listener)
