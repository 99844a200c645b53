"""The body limit with the error boundary inside it, as one layer (the default stack).

`install()` adds `BodyLimitMiddleware` and, right inside it, `ErrorBoundaryMiddleware`. Each
pure-ASGI layer costs a coroutine call per request and a `send` wrapper call per message;
the boundary's wrapper only records how far the response got, which the body limit's wrapper
can record as well. `fuse_inner_blocks()` replaces the adjacent pair with one
`BoundedBodyLimitMiddleware`, which runs the boundary's exception handling in the same place,
with the same `receive` and `send` it had.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp

from fastapi_chassis._chassis import Chassis
from fastapi_chassis._error_boundary import ErrorBoundaryMiddleware
from fastapi_chassis.middleware.body_limit import BodyLimitMiddleware

__all__ = ["BoundedBodyLimitMiddleware", "fuse_inner_blocks"]


class BoundedBodyLimitMiddleware(BodyLimitMiddleware):
    """`BodyLimitMiddleware(ErrorBoundaryMiddleware(app, **boundary), max_bytes=...)` in one."""

    def __init__(
        self, app: ASGIApp, *, boundary: dict[str, Any], max_bytes: int | None = 1024 * 1024
    ) -> None:
        super().__init__(app, max_bytes=max_bytes)
        self._boundary = ErrorBoundaryMiddleware(app, **boundary)


def fuse_inner_blocks(chassis: Chassis) -> None:
    """Replace an adjacent body limit + error boundary in `chassis.outer_middleware` by one."""
    stack = chassis.outer_middleware
    classes: list[Any] = [entry.cls for entry in stack]
    for at in range(len(stack) - 1):
        if classes[at] is BodyLimitMiddleware and classes[at + 1] is ErrorBoundaryMiddleware:
            # The boundary's options hold the app's live handler map and observer list.
            options: dict[str, Any] = {**stack[at].kwargs, "boundary": dict(stack[at + 1].kwargs)}
            stack[at : at + 2] = [Middleware(BoundedBodyLimitMiddleware, **options)]
            return
