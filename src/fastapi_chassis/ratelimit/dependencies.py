"""`rate_limit(...)`: a per-route limit as a FastAPI dependency, for hot spots like a login."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from fastapi_chassis.errors import ServiceUnavailable, TooManyRequests
from fastapi_chassis.ratelimit._limits import parse_limits
from fastapi_chassis.ratelimit._runtime import (
    RateLimitEvent,
    RateLimiting,
    decision_headers,
    policy_header,
    policy_names,
    rejection_detail,
)
from fastapi_chassis.ratelimit.keys import KeyFunc, by_client_ip
from fastapi_chassis.state import StateUnavailable

__all__ = ["rate_limit"]

_fallback_runtime = RateLimiting()


def rate_limit(
    limits: str,
    *,
    key: KeyFunc = by_client_ip,
    name: str | None = None,
) -> Callable[[Request, Response], Awaitable[None]]:
    """A dependency admitting at most `limits` per key on the routes that declare it.

        @app.post("/token", dependencies=[Depends(rate_limit("5/minute"))])

    Each route gets its own budget, named after its path; routes that pass the same `name`
    share one. Rejections raise `TooManyRequests` (429 problem+json with `Retry-After`), so the
    handler does not run; admitted responses carry the `RateLimit` headers. The app's limiter
    (memory or Redis), trusted proxies, exempt keys and fail-open choice come from its
    `rate_limit` settings, whether or not the global limit is enabled.

    Raises:
        ConfigurationError: at definition time, when `limits` or `name` cannot be used.
    """
    parsed = parse_limits(limits, setting=f"rate_limit({limits!r})")
    if name is not None:
        policy_names(name, parsed)
    cache: dict[str, tuple[tuple[str, ...], bytes]] = {}

    async def dependency(request: Request, response: Response) -> None:
        runtime = _runtime_of(request)
        policy = name if name is not None else _route_path(request)
        headers_for = cache.get(policy)
        if headers_for is None:
            names = policy_names(policy, parsed)
            headers_for = cache[policy] = (names, policy_header(names, parsed))
        client = key(request)
        if client in runtime.exempt_keys:
            return
        try:
            decision = await runtime.limiter.hit(policy, client, parsed)
        except StateUnavailable as exc:
            runtime.store_failed(policy, exc)
            if runtime.fail_open:
                return
            raise ServiceUnavailable(
                "rate limits cannot be checked right now; retry shortly",
                code="rate_limit_unavailable",
                headers={"Retry-After": "1"},
            ) from exc
        names, policy_value = headers_for
        headers = decision_headers(names, policy_value, decision, legacy=runtime.legacy_headers)
        if not decision.allowed:
            runtime.emit(RateLimitEvent("rejected", policy))
            raise TooManyRequests(
                rejection_detail(decision),
                headers={k.decode(): v.decode() for k, v in headers},
            )
        for header, value in headers:
            response.headers.append(header.decode(), value.decode())

    return dependency


def _runtime_of(request: Request) -> RateLimiting:
    chassis = getattr(request.app.state, "chassis", None)
    runtime = chassis.extensions.get("ratelimit") if chassis is not None else None
    return runtime if isinstance(runtime, RateLimiting) else _fallback_runtime


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else str(request.scope.get("path", "/"))
