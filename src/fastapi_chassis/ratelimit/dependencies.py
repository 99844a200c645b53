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
from fastapi_chassis.ratelimit.keys import KeyFunc, by_client_ip, exemptible
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
    `rate_limit` settings, whether or not the global limit is enabled. Outside a chassis app,
    a process-wide memory limiter counts and the socket peer is the client; the app needs
    `fastapi_chassis.errors.install_error_handlers` to answer 429 as problem+json.

    Raises:
        ConfigurationError: at definition time, when `limits` or `name` cannot be used.
    """
    parsed = parse_limits(limits, setting=f"rate_limit({limits!r})")
    if name is not None:
        policy_names(name, parsed)
    # Per route path: the policy name, its header names and its RateLimit-Policy value.
    cache: dict[str, tuple[str, tuple[str, ...], bytes]] = {}

    async def dependency(request: Request, response: Response) -> None:
        runtime = _runtime_of(request)
        path = _route_path(request)
        found = cache.get(path)
        if found is None:
            policy = name if name is not None else _header_safe(path)
            names = policy_names(policy, parsed)
            found = cache[path] = (policy, names, policy_header(names, parsed))
        policy, names, policy_value = found
        client = key(request)
        if runtime.is_exempt(client) and exemptible(key, client):
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
    return str(getattr(route, "path", None) or request.scope.get("path", "/"))


def _header_safe(path: str) -> str:
    # The name goes into a structured header: keep it to printable ASCII without quotes.
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in path)
