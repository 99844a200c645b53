"""Match the chassis' own routes after the app's, where that cannot change which route answers.

`install()` adds its routes (the docs assets, `/healthz`, `/readyz`, `/metrics`, the JWKS) before
the app defines its own, and Starlette tries routes in list order: every request to an app route
would first be matched against each chassis route. When the router is about to serve (the first
time the middleware stack is built), each chassis route moves behind the app's routes, unless an
app route added after it could answer one of its paths (a catch-all `/{path:path}`, a `Mount`, or
the same path with another method): such a chassis route stays just before the first of those, so
it keeps answering exactly the requests it answered before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp

__all__ = ["defer_chassis_routes"]

_PARAM = re.compile(r"{[^}]*}")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Values tried for a path parameter of a chassis route: any value, and the docs asset names.
_PARAM_VALUES = (
    "x",
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "swagger-init.js",
    "redoc.standalone.js",
    "favicon.png",
)


def defer_chassis_routes(app: FastAPI, before: list[BaseRoute]) -> None:
    """Reorder `app`'s routes when it first builds its middleware stack.

    `before` is the route list as it was before `install()` appended the chassis' routes (the
    docs pages it swaps in place keep FastAPI's position).
    """
    existing = {id(route) for route in before}
    chassis = [route for route in app.router.routes[len(before) :] if id(route) not in existing]
    if not chassis:
        return
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        _reorder(app, chassis)
        return build()

    setattr(app, "build_middleware_stack", build_middleware_stack)  # noqa: B010


def _reorder(app: FastAPI, chassis: list[BaseRoute]) -> None:
    routes = app.router.routes
    ids = {id(route) for route in chassis}
    if not all(any(route is r for r in routes) for route in chassis):
        return  # the app edited the route list itself: leave its order alone
    first = next(index for index, route in enumerate(routes) if id(route) in ids)
    head = routes[:first]
    rest = [route for route in routes[first:] if id(route) not in ids]
    for route in chassis:
        probes = _probes(route)
        position = len(rest)
        if probes is None:
            position = 0
        else:
            for index, other in enumerate(rest):
                if id(other) in ids or not _overlaps(other, probes):
                    continue
                position = index
                break
        rest.insert(position, route)
    routes[:] = head + rest
    mark = getattr(app.router, "_mark_routes_changed", None)
    if mark is not None:
        mark()


def _probes(route: BaseRoute) -> list[dict[str, Any]] | None:
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None  # nothing to probe with: keep it ahead of the app's routes
    paths = {_PARAM.sub(value, path) for value in _PARAM_VALUES} if "{" in path else {path}
    return [
        {
            "type": "http",
            "path": probe,
            "raw_path": probe.encode(),
            "root_path": "",
            "method": method,
            "headers": [],
            "query_string": b"",
        }
        for probe in sorted(paths)
        for method in _METHODS
    ]


def _overlaps(route: BaseRoute, probes: list[dict[str, Any]]) -> bool:
    for probe in probes:
        try:
            match, _ = route.matches(dict(probe))
        except Exception:  # a route that cannot judge a synthetic request: assume it overlaps
            return True
        if match != Match.NONE:
            return True
    return False
