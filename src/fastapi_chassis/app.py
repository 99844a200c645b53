"""`build_app()` and `install()`: the one place every building block is wired.

`install()` is the ordered list of the blocks, so a request's path through the chassis can be
read top to bottom here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any, SupportsIndex, cast

from fastapi import Depends, FastAPI
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection

from fastapi_chassis._chassis import Chassis, get_chassis
from fastapi_chassis._docs import install_docs
from fastapi_chassis._error_boundary import install_error_boundary
from fastapi_chassis._proxy import TrustedProxies
from fastapi_chassis._routes import defer_chassis_routes
from fastapi_chassis.auth._install import UserLoader, install_auth
from fastapi_chassis.errors import ConfigurationError, install_error_handlers
from fastapi_chassis.health import install_health
from fastapi_chassis.middleware._bounded import fuse_inner_blocks
from fastapi_chassis.middleware._core import fuse_body_limit, fuse_outer_blocks
from fastapi_chassis.middleware._guards import ProblemCORSMiddleware, ProblemTrustedHostMiddleware
from fastapi_chassis.middleware.access_log import AccessLogMiddleware
from fastapi_chassis.middleware.body_limit import install_body_limit
from fastapi_chassis.middleware.request_id import install_request_id
from fastapi_chassis.middleware.security_headers import install_security_headers
from fastapi_chassis.observability.logging import configure_logging
from fastapi_chassis.observability.metrics import install_metrics
from fastapi_chassis.observability.tracing import install_tracing
from fastapi_chassis.ratelimit import install_rate_limit
from fastapi_chassis.settings import ChassisSettings
from fastapi_chassis.state import install_state

__all__ = ["CurrentSettings", "build_app", "get_settings", "install"]


def get_settings(connection: HTTPConnection) -> ChassisSettings:
    """Dependency: the settings the serving app was built with.

    Override it in tests with `app.dependency_overrides[get_settings] = lambda: my_settings`.
    Apps with their own subclass declare a precisely typed alias:
    `Settings = Annotated[MySettings, Depends(get_settings)]`.
    """
    return get_chassis(connection.app).settings


CurrentSettings = Annotated[ChassisSettings, Depends(get_settings)]


def build_app(
    settings: ChassisSettings | None = None,
    *,
    user_loader: UserLoader | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """`FastAPI(...)` with title, version and docs from `settings`, then `install()`.

    With no `settings`, they are read from the environment. `user_loader` goes to `install()`.
    Other keyword arguments go to `FastAPI` and win over the values derived from settings; a
    `lifespan=` runs inside the chassis' own: chassis resources open first and close last, and
    shutdown drains in-flight requests before your lifespan's shutdown code runs.
    """
    settings = settings if settings is not None else ChassisSettings()
    docs_on = settings.docs_enabled
    kwargs: dict[str, Any] = {
        "title": settings.service_name,
        "version": settings.version,
        "debug": False,
        "openapi_url": settings.docs.openapi_url if docs_on else None,
        "docs_url": settings.docs.docs_url if docs_on else None,
        "redoc_url": settings.docs.redoc_url if docs_on else None,
    }
    kwargs.update(fastapi_kwargs)
    app = FastAPI(**kwargs)
    install(app, settings, user_loader=user_loader)
    return app


def install(
    app: FastAPI,
    settings: ChassisSettings | None = None,
    *,
    user_loader: UserLoader | None = None,
) -> None:
    """Wire every enabled building block onto `app`, keeping its routes, middleware and handlers.

    `user_loader(principal) -> user | None` (sync or async) gives `CurrentUser` the app's own
    user object for a verified token; without it, `CurrentUser` is the `Principal`.

    Raises:
        ConfigurationError: the app was already installed, or has already started serving.
    """
    if isinstance(getattr(app.state, "chassis", None), Chassis):
        raise ConfigurationError(
            "install() was already called on this app; call it once (build_app() calls it for you)"
        )
    if app.middleware_stack is not None:
        raise ConfigurationError(
            "install() must run before the app serves its first request or starts up"
        )
    settings = settings if settings is not None else ChassisSettings()
    chassis = Chassis(settings=settings)
    app.state.chassis = chassis
    app_routes = list(app.router.routes)

    if settings.logging.configure:
        configure_logging(settings)
    install_error_handlers(app)
    install_state(chassis)
    install_auth(app, chassis, user_loader=user_loader)
    docs = install_docs(app)  # Swagger UI / ReDoc served by the app itself

    # The request path, outermost first.
    install_tracing(app, settings)  # outermost: native telemetry, or first outer middleware
    install_health(app, settings)  # in-flight counter; /healthz, /readyz; drain at shutdown
    install_request_id(chassis)
    _install_access_log(chassis)
    install_metrics(app, settings)  # beside the access log: sees every response's final status
    install_security_headers(chassis, docs)
    _install_cors(chassis)
    _install_trusted_hosts(chassis)
    install_rate_limit(chassis)
    install_body_limit(app, chassis)
    # Keep last: the boundary is the innermost chassis middleware, so every block above
    # decorates its 500s (request id, security headers, CORS) and the app's own middleware
    # run inside it.
    install_error_boundary(app, chassis)
    fuse_outer_blocks(chassis)  # in-flight .. security headers: one layer when adjacent
    fuse_inner_blocks(chassis)  # body limit + boundary: one layer when adjacent
    fuse_body_limit(chassis)  # and that layer inside the first, when adjacent

    app.user_middleware = _MiddlewareList(
        [*chassis.outer_middleware, *app.user_middleware, *chassis.inner_middleware],
        chassis_outer=len(chassis.outer_middleware),
    )
    _compose_lifespan(app, chassis)
    defer_chassis_routes(app, app_routes)  # matched after the app's own routes


class _MiddlewareList(list[Middleware]):
    """The app's middleware list, keeping the chassis stack outermost.

    Starlette's `add_middleware()` inserts at index 0, which after `build_app()` would put a
    service's middleware outside the request id, security headers and error boundary. Inserting
    just inside the chassis stack instead keeps every response decorated and every crash caught.
    """

    def __init__(self, items: list[Middleware], *, chassis_outer: int) -> None:
        super().__init__(items)
        self.chassis_outer = chassis_outer

    def insert(self, index: SupportsIndex, item: Middleware, /) -> None:
        position = int(index)
        if 0 <= position < self.chassis_outer:
            position = self.chassis_outer
        super().insert(position, item)


def _install_access_log(chassis: Chassis) -> None:
    settings = chassis.settings
    if not settings.logging.access_log:
        return
    skip = settings.logging.access_log_skip_paths
    if skip is None:
        health = settings.health
        skip = [health.liveness_path, health.readiness_path, settings.metrics.path]
    chassis.outer_middleware.append(
        Middleware(
            AccessLogMiddleware,
            skip_paths=skip,
            trusted_proxies=TrustedProxies.from_settings(settings),
        )
    )


def _install_cors(chassis: Chassis) -> None:
    cors = chassis.settings.cors
    if not cors.allow_origins and not cors.allow_origin_regex:
        return
    expose = list(cors.expose_headers)
    request_id_header = chassis.settings.request_id.header
    if chassis.settings.request_id.enabled and request_id_header not in expose:
        expose.append(request_id_header)
    chassis.outer_middleware.append(
        Middleware(
            ProblemCORSMiddleware,
            allow_origins=cors.allow_origins,
            allow_origin_regex=cors.allow_origin_regex,
            allow_methods=cors.allow_methods,
            allow_headers=cors.allow_headers,
            allow_credentials=cors.allow_credentials,
            expose_headers=expose,
            max_age=cors.max_age,
        )
    )


def _install_trusted_hosts(chassis: Chassis) -> None:
    hosts = chassis.settings.trusted_hosts.allowed_hosts
    if hosts:
        chassis.outer_middleware.append(
            Middleware(ProblemTrustedHostMiddleware, allowed_hosts=hosts)
        )


def _compose_lifespan(app: FastAPI, chassis: Chassis) -> None:
    """Wrap the app's lifespan in the chassis' own.

    Startup: chassis resources open in order, then the app's lifespan starts.
    Shutdown: the `before_shutdown` hooks run first (the health drain: readiness 503, the rest of
    the drain delay, the bounded wait for in-flight requests) while the app's resources are
    still open; then the app's lifespan shuts down; then chassis resources close in reverse.
    """
    user_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def chassis_lifespan(app_: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        async with AsyncExitStack() as stack:
            for factory in chassis.resources:
                await stack.enter_async_context(factory(app_))
            async with user_lifespan(app_) as state:
                try:
                    yield state
                finally:
                    for hook in chassis.before_shutdown:
                        await hook()

    app.router.lifespan_context = cast(Any, chassis_lifespan)
