"""The outer chassis blocks as one middleware: one coroutine frame, one `send` wrapper.

`install()` adds the in-flight counter, request id, access log, metrics and security headers as
separate middleware, in that order. Each pure-ASGI layer costs a coroutine call per request and
a wrapper call per ASGI message, whatever it does. When they sit next to each other (the
default), `fuse_outer_blocks()` replaces them with `CoreMiddleware`, which runs the same
per-request work from the same configured instances, in the same order:

- the in-flight count covers the whole request;
- the request id is minted (or accepted) and in context before anything is logged;
- the access line and the metrics see the status the client gets and time the whole response;
- the security headers and the request id header are added in one pass over the headers.

The public classes stay as they are for apps that add them one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis._chassis import Chassis
from fastapi_chassis._scope import HEADER_NAME, app_path
from fastapi_chassis.health import HealthRegistry, InFlightMiddleware
from fastapi_chassis.middleware._bounded import BoundedBodyLimitMiddleware
from fastapi_chassis.middleware._observe import observe
from fastapi_chassis.middleware.access_log import AccessLogMiddleware
from fastapi_chassis.middleware.body_limit import BodyLimitMiddleware, _Malformed, decorating
from fastapi_chassis.middleware.request_id import RequestIDMiddleware
from fastapi_chassis.middleware.security_headers import (
    Header,
    SecurityHeadersMiddleware,
    add_missing,
)
from fastapi_chassis.observability.metrics import MetricsMiddleware

__all__ = ["CoreMiddleware", "fuse_body_limit", "fuse_outer_blocks"]


class CoreMiddleware:
    """In-flight count, request id, access log, metrics and security headers in one layer.

    Takes the options each block's own middleware takes; `access_log`, `metrics` and
    `registry` are optional. Output and side effects are those of the separate middleware.
    `body_limit` (the options of `BoundedBodyLimitMiddleware`, or of `BodyLimitMiddleware`
    without `boundary`) runs the body limit right inside, as the next layer would.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_id: dict[str, Any],
        security_headers: dict[str, Any],
        access_log: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        registry: HealthRegistry | None = None,
        body_limit: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self._limiter: BodyLimitMiddleware | None = None
        if body_limit is not None:
            limiter = (
                BoundedBodyLimitMiddleware if "boundary" in body_limit else BodyLimitMiddleware
            )
            self._limiter = limiter(app, **body_limit)
        self._ids = RequestIDMiddleware(app, **request_id)
        self._security = SecurityHeadersMiddleware(app, **security_headers)
        self._access = AccessLogMiddleware(app, **access_log) if access_log is not None else None
        self._metrics = MetricsMiddleware(app, **metrics) if metrics is not None else None
        self._registry = registry
        self._header = self._ids.header
        # Every response header name this layer adds or replaces.
        self._ours = self._security._names | {self._header}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # WebSockets get their id; the other blocks never touch non-HTTP scopes.
            await self._ids(scope, receive, send)
            return
        registry = self._registry
        if registry is not None:
            registry._request_started()
        request_id, tokens = self._ids._begin(scope)
        try:
            access, metrics = self._access, self._metrics
            path = app_path(scope) if access is not None or metrics is not None else ""
            if access is not None and path in access._skip:
                access = None
            if metrics is not None and path in metrics.exclude_paths:
                metrics = None
            extra, hsts = self._security._for_request(scope, path)
            pair = (self._header, request_id.encode("ascii"))
            limiter = self._limiter

            # One C-level call into `_decorate`, not a closure's Python frame and then another.
            decorate = partial(self._decorate, pair, extra, hsts)

            if access is None and metrics is None and limiter is not None:
                # The body limit's own `send` decorates the headers: one wrapper, not two.
                try:
                    limited = limiter._open(scope, receive, send, decorate)
                except _Malformed:
                    await limiter._send_400(decorating(send, decorate))
                    return
                try:
                    await self.app(scope, limited.receive, limited.send)
                except Exception as exc:
                    await limiter._fail(limited, exc)
                finally:
                    limiter._close(limited)
            elif access is None and metrics is None:
                await self.app(scope, receive, decorating(send, decorate))
            else:
                await observe(
                    self.app if limiter is None else limiter,
                    scope,
                    receive,
                    send,
                    path=path,
                    access=access,
                    metrics=metrics,
                    decorate=decorate,
                )
        finally:
            self._ids._end(tokens)
            if registry is not None:
                registry._request_finished()

    def _decorate(
        self, pair: Header, extra: Iterable[Header], hsts: Header | None, message: Message
    ) -> list[Header]:
        """The response's headers without any id header of its own, plus ours."""
        own = message.get("headers", ())
        if type(own) is not list and type(own) is not tuple:
            own = list(own)  # any iterable (ASGI): read it once
        present = set(map(bytes.lower, map(HEADER_NAME, own)))  # in C: no Python frame per header
        if present.isdisjoint(self._ours):
            # The usual case: the app set none of our headers, so add them all at once.
            headers = [*own, *extra]
            if hsts is not None:
                headers.append(hsts)
        else:
            header = self._header
            headers = add_missing(
                [item for item in own if item[0].lower() != header],
                extra,
                hsts,
                self._security._names,
                present,
            )
        headers.append(pair)
        return headers


# The classes fused, outermost first; only the request id and security headers are required.
_ORDER: tuple[type, ...] = (
    InFlightMiddleware,
    RequestIDMiddleware,
    AccessLogMiddleware,
    MetricsMiddleware,
    SecurityHeadersMiddleware,
)


def fuse_outer_blocks(chassis: Chassis) -> None:
    """Replace the adjacent outer blocks in `chassis.outer_middleware` with one `CoreMiddleware`.

    Only a run of entries in `_ORDER`'s order that contains the request id and the security
    headers is fused; anything else between them (CORS, a user's class) keeps them separate.
    """
    stack = chassis.outer_middleware
    classes: list[Any] = [entry.cls for entry in stack]
    if RequestIDMiddleware not in classes or SecurityHeadersMiddleware not in classes:
        return
    first = classes.index(RequestIDMiddleware)
    if first > 0 and classes[first - 1] is InFlightMiddleware:
        first -= 1
    last = classes.index(SecurityHeadersMiddleware)
    run = classes[first : last + 1]
    if len(set(run)) != len(run) or run != [cls for cls in _ORDER if cls in run]:
        return
    entries: dict[Any, Middleware] = {entry.cls: entry for entry in stack[first : last + 1]}
    options: dict[str, Any] = {
        "request_id": dict(entries[RequestIDMiddleware].kwargs),
        "security_headers": dict(entries[SecurityHeadersMiddleware].kwargs),
    }
    if AccessLogMiddleware in entries:
        options["access_log"] = dict(entries[AccessLogMiddleware].kwargs)
    if MetricsMiddleware in entries:
        options["metrics"] = dict(entries[MetricsMiddleware].kwargs)
    if InFlightMiddleware in entries:
        options["registry"] = entries[InFlightMiddleware].kwargs["registry"]
    fused = CoreMiddleware(_unused, **options)
    if fused._header in fused._security._names:
        return  # the id header is also a security header: keep the two passes in their order
    stack[first : last + 1] = [Middleware(CoreMiddleware, **options)]


def fuse_body_limit(chassis: Chassis) -> None:
    """Move a body limit right inside `CoreMiddleware` into it (after the other fusions)."""
    stack = chassis.outer_middleware
    classes: list[Any] = [entry.cls for entry in stack]
    for at in range(len(stack) - 1):
        if classes[at] is CoreMiddleware and classes[at + 1] in (
            BoundedBodyLimitMiddleware,
            BodyLimitMiddleware,
        ):
            core, limit = stack[at], stack[at + 1]
            options: dict[str, Any] = {**core.kwargs, "body_limit": dict(limit.kwargs)}
            stack[at : at + 2] = [Middleware(CoreMiddleware, **options)]
            return


async def _unused(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("validation-only instance")  # pragma: no cover
