"""The per-app chassis record: the settings an app was built with and what `install()` wired.

Stored on `app.state.chassis`. Building blocks register lifespan resources and middleware here;
`install()` turns the record into the app's middleware stack and lifespan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp

from fastapi_chassis.errors import ConfigurationError
from fastapi_chassis.settings import ChassisSettings

ResourceFactory = Callable[[Any], AbstractAsyncContextManager[Any]]
ShutdownHook = Callable[[], Awaitable[None]]


@dataclass
class Chassis:
    """What the chassis knows about one app."""

    settings: ChassisSettings
    #: Opened in order when the app starts, closed in reverse when it stops (after the app's
    #: own lifespan has shut down).
    resources: list[ResourceFactory] = field(default_factory=list)
    #: Awaited in order when shutdown begins, before the app's own lifespan shuts down (while
    #: its resources are still open), e.g. the health drain.
    before_shutdown: list[ShutdownHook] = field(default_factory=list)
    #: Chassis middleware outside the app's own, outermost first.
    outer_middleware: list[Middleware] = field(default_factory=list)
    #: Chassis middleware inside the app's own (just outside the router), outermost first.
    inner_middleware: list[Middleware] = field(default_factory=list)
    #: Free-form slots blocks use to find each other (e.g. the shared state store).
    extensions: dict[str, Any] = field(default_factory=dict)

    def add_resource(self, factory: ResourceFactory) -> None:
        """Open `factory(app)` as an async context manager for the app's lifetime."""
        self.resources.append(factory)

    def add_before_shutdown(self, hook: ShutdownHook) -> None:
        """Await `hook()` when shutdown begins, before the app's own lifespan shuts down."""
        self.before_shutdown.append(hook)

    def add_middleware(self, cls: Callable[..., ASGIApp], /, **options: Any) -> None:
        """Append a middleware to the outer chassis stack (call order = request order)."""
        self.outer_middleware.append(Middleware(cls, **options))


def get_chassis(app: Any) -> Chassis:
    """The chassis record of `app` (a FastAPI/Starlette app), or a clear error."""
    chassis = getattr(getattr(app, "state", None), "chassis", None)
    if not isinstance(chassis, Chassis):
        raise ConfigurationError(
            "this app has no chassis; create it with build_app(settings) or call "
            "install(app, settings) before serving"
        )
    return chassis
