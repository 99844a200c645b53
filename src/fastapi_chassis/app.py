"""`build_app()` and `install()`: the one place every building block is wired.

`install()` is the ordered list of the blocks, so a request's path through the chassis can be
read top to bottom here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any, cast

from fastapi import Depends, FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection

from fastapi_chassis._chassis import Chassis, get_chassis
from fastapi_chassis.errors import ConfigurationError, install_error_handlers
from fastapi_chassis.health import install_health
from fastapi_chassis.observability.metrics import install_metrics
from fastapi_chassis.observability.tracing import install_tracing
from fastapi_chassis.settings import ChassisSettings

__all__ = ["CurrentSettings", "build_app", "get_settings", "install"]


def get_settings(connection: HTTPConnection) -> ChassisSettings:
    """Dependency: the settings the serving app was built with.

    Override it in tests with `app.dependency_overrides[get_settings] = lambda: my_settings`.
    Apps with their own subclass declare a precisely typed alias:
    `Settings = Annotated[MySettings, Depends(get_settings)]`.
    """
    return get_chassis(connection.app).settings


CurrentSettings = Annotated[ChassisSettings, Depends(get_settings)]


def build_app(settings: ChassisSettings | None = None, **fastapi_kwargs: Any) -> FastAPI:
    """`FastAPI(...)` with title, version and docs from `settings`, then `install()`.

    With no `settings`, they are read from the environment. Keyword arguments go to `FastAPI`
    and win over the values derived from settings; a `lifespan=` runs inside the chassis'
    own (chassis resources open first and close last).
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
    install(app, settings)
    return app


def install(app: FastAPI, settings: ChassisSettings | None = None) -> None:
    """Wire every enabled building block onto `app`, keeping its routes, middleware and handlers.

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

    install_error_handlers(app)

    # The request path, outermost first.
    install_tracing(app, settings)  # outermost: native telemetry, or first outer middleware
    install_health(app, settings)  # in-flight counter; /healthz, /readyz; drain at shutdown
    install_metrics(app, settings)  # beside the access log: sees every response's final status
    _install_cors(chassis)
    _install_trusted_hosts(chassis)

    app.user_middleware[0:0] = chassis.outer_middleware
    app.user_middleware.extend(chassis.inner_middleware)
    _compose_lifespan(app, chassis)


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
            CORSMiddleware,
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
        chassis.outer_middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=hosts))


def _compose_lifespan(app: FastAPI, chassis: Chassis) -> None:
    user_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def chassis_lifespan(app_: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        async with AsyncExitStack() as stack:
            for factory in chassis.resources:
                await stack.enter_async_context(factory(app_))
            async with user_lifespan(app_) as state:
                yield state

    app.router.lifespan_context = cast(Any, chassis_lifespan)
