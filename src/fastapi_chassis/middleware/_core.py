"""Request id and security headers as one middleware, one `send` wrapper per request.

`install()` wires `RequestIDMiddleware` and `SecurityHeadersMiddleware` from settings; when both
are on and only the access log and metrics sit between them (neither answers a request itself
nor reads these headers), they are replaced by `CoreHeadersMiddleware`, which does the same work
from the same precomputed pieces with one coroutine frame and one header pass per response
instead of two. The public classes stay as they are for apps that add them alone.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis._chassis import Chassis
from fastapi_chassis._context import request_id_var, subject_var
from fastapi_chassis.middleware.request_id import RequestIDMiddleware, new_request_id
from fastapi_chassis.middleware.security_headers import SecurityHeadersMiddleware

__all__ = ["CoreHeadersMiddleware", "fuse_core_headers"]

# Outer chassis middleware that may sit between the two without changing what a client sees:
# they answer no request themselves and do not read the request id or security headers.
_TRANSPARENT = ("AccessLogMiddleware", "MetricsMiddleware")


class CoreHeadersMiddleware:
    """`RequestIDMiddleware` then `SecurityHeadersMiddleware`, fused (same options, same output)."""

    def __init__(
        self, app: ASGIApp, *, request_id: dict[str, Any], security_headers: dict[str, Any]
    ) -> None:
        self.app = app
        self._ids = RequestIDMiddleware(app, **request_id)
        self._security = SecurityHeadersMiddleware(app, **security_headers)
        self._header = self._ids.header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # WebSockets get their id; security headers never touch non-HTTP scopes.
            await self._ids(scope, receive, send)
            return
        ids = self._ids
        request_id = (ids._incoming(scope) if ids.trust_incoming else None) or new_request_id()
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        subject_token = subject_var.set(None)
        try:
            security = self._security
            extra = security._headers
            if security._pages:
                extra = security._pages.get(security._route_path(scope), extra)
            hsts = security._hsts
            if (
                hsts is not None
                and not security._force_hsts
                and security._proxies.scheme(scope) != "https"
            ):
                hsts = None
            names = security._names
            header = self._header
            pair = (header, request_id.encode("ascii"))

            async def send_core(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = []
                    present = set()
                    for item in message.get("headers", ()):
                        name = item[0].lower()
                        present.add(name)
                        if name != header:
                            headers.append(item)
                    if present.isdisjoint(names):
                        headers.extend(extra)
                        if hsts is not None:
                            headers.append(hsts)
                    else:
                        for item in extra:
                            if item[0] not in present:
                                headers.append(item)
                        if hsts is not None and b"strict-transport-security" not in present:
                            headers.append(hsts)
                    headers.append(pair)
                    message["headers"] = headers
                await send(message)

            await self.app(scope, receive, send_core)
        finally:
            subject_var.reset(subject_token)
            request_id_var.reset(token)


def fuse_core_headers(chassis: Chassis) -> None:
    """Replace the two middleware entries in `chassis.outer_middleware` with one, when safe."""
    stack = chassis.outer_middleware
    classes: list[Any] = [entry.cls for entry in stack]
    if RequestIDMiddleware not in classes or SecurityHeadersMiddleware not in classes:
        return
    first = classes.index(RequestIDMiddleware)
    second = classes.index(SecurityHeadersMiddleware)
    if second < first or any(
        getattr(cls, "__name__", "") not in _TRANSPARENT for cls in classes[first + 1 : second]
    ):
        return
    ids, security = stack[first], stack[second]
    fused = CoreHeadersMiddleware(_unused, request_id=ids.kwargs, security_headers=security.kwargs)
    if fused._header in fused._security._names:
        return  # the id header is also a security header: keep the two passes in their order
    stack[first] = Middleware(
        CoreHeadersMiddleware, request_id=dict(ids.kwargs), security_headers=dict(security.kwargs)
    )
    del stack[second]


async def _unused(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("validation-only instance")  # pragma: no cover
