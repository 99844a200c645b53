"""`RateLimitMiddleware`: one global limit per client, decided before the app reads anything."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis._scope import app_path
from fastapi_chassis.ratelimit._limits import Limit, parse_limits
from fastapi_chassis.ratelimit._runtime import (
    PROBLEM_CONTENT_TYPE,
    RateLimitEvent,
    RateLimiting,
    decision_headers,
    policy_header,
    policy_names,
    rejection_detail,
)
from fastapi_chassis.ratelimit.keys import KeyFunc, by_client_ip, exemptible
from fastapi_chassis.state import StateUnavailable

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware:
    """Pure ASGI middleware applying `limits` to every HTTP request not exempt.

    Allowed responses gain `RateLimit-Policy` and `RateLimit` headers; a rejected request gets a
    429 problem+json with `Retry-After` and never reaches the app. When the store fails, the
    request goes through (`fail_open`) or gets a 503 problem+json.

    Args:
        limits: `"100/minute"`, `"10/second;500/hour"`, or parsed `Limit`s.
        runtime: limiter and shared options; a chassis app passes its own. Default: a
            process-local memory limiter failing open.
        key: who a request counts against (default: client IP, IPv6 per /64). This runs
            before any authentication, so a key read from a header here is unverified: a client
            sending a fresh value per request would get a fresh budget.
        name: policy name in the headers and the store.
        exempt_paths: paths (and everything below them) never limited.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: str | Sequence[Limit],
        runtime: RateLimiting | None = None,
        key: KeyFunc = by_client_ip,
        name: str = "default",
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.limits = parse_limits(limits) if isinstance(limits, str) else tuple(limits)
        self.runtime = runtime if runtime is not None else RateLimiting()
        self.key = key
        self.name = name
        self.names = policy_names(name, self.limits)
        self.policy = policy_header(self.names, self.limits)
        paths = tuple(p.rstrip("/") for p in exempt_paths if p.strip("/"))
        self.exempt_exact = frozenset(paths)
        self.exempt_prefixes = tuple(p + "/" for p in paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = app_path(scope)
        if path in self.exempt_exact or path.startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        runtime = self.runtime
        # The common case (by client IP) needs no Request.
        key = runtime.client_key(scope) if self.key is by_client_ip else self.key(Request(scope))
        if runtime.is_exempt(key) and exemptible(self.key, key):
            await self.app(scope, receive, send)
            return
        try:
            decision = await runtime.limiter.hit(self.name, key, self.limits)
        except StateUnavailable as exc:
            runtime.store_failed(self.name, exc)
            if runtime.fail_open:
                await self.app(scope, receive, send)
            else:
                await self._send_problem(
                    send,
                    503,
                    "Service Unavailable",
                    "rate_limit_unavailable",
                    "rate limits cannot be checked right now; retry shortly",
                    [(b"retry-after", b"1")],
                )
            return
        headers = decision_headers(self.names, self.policy, decision, legacy=runtime.legacy_headers)
        if not decision.allowed:
            runtime.emit(RateLimitEvent("rejected", self.name))
            await self._send_problem(
                send, 429, "Too Many Requests", "rate_limited", rejection_detail(decision), headers
            )
            return

        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            return send(message)

        await self.app(scope, receive, send_with_headers)

    async def _send_problem(
        self,
        send: Send,
        status: int,
        title: str,
        code: str,
        detail: str,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        body = self.runtime.problem(status, title, code, detail)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_CONTENT_TYPE),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
