"""OpenTelemetry tracing (extra `otel`): one server span per request, W3C `traceparent` honoured.

`install_tracing` builds a `TracerProvider` from settings (resource, parent-based ratio sampler,
exporter) and instruments the app exactly once: with FastAPI's native `telemetry` support on
releases that have it, otherwise with the ASGI middleware of opentelemetry-instrumentation,
configured so it never re-matches routes (the route template is read from `scope["route"]`
after routing). Health and metrics paths are never traced.

`current_trace_id()` and `current_span_id()` let logs and error bodies carry the ids; they
return None, cheaply, when tracing is off or the extra is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis._chassis import get_chassis
from fastapi_chassis._scope import app_path
from fastapi_chassis._trace import current_span_id, current_trace_id
from fastapi_chassis.errors import ConfigurationError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider

    from fastapi_chassis.settings import ChassisSettings

__all__ = [
    "build_tracer_provider",
    "current_span_id",
    "current_trace_id",
    "install_tracing",
    "native_telemetry_available",
]

_INSTALL_HINT = 'pip install "fastapi-chassis[otel]"'
_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY"}
)


def native_telemetry_available(app: Any) -> bool:
    """Whether `app` is a FastAPI release with native OpenTelemetry support (`telemetry=`)."""
    return isinstance(getattr(app, "_telemetry", None), dict) and hasattr(app, "_native_telemetry")


def _missing_extra(settings: ChassisSettings, exc: ImportError) -> ConfigurationError:
    env = settings.env_var("tracing", "enabled")
    return ConfigurationError(
        f"{env} is true but OpenTelemetry support is not installed "
        f"({exc.name or 'opentelemetry'} is missing); run `{_INSTALL_HINT}` or set {env}=false"
    )


def build_tracer_provider(settings: ChassisSettings) -> TracerProvider:
    """A `TracerProvider` with the service resource, sampler and exporter from settings.

    Raises:
        ConfigurationError: the `otel` extra (or the OTLP exporter) is not installed.
    """
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as exc:
        raise _missing_extra(settings, exc) from exc
    config = settings.tracing
    resource = Resource.create(
        {
            "service.name": settings.service_name,
            "service.version": settings.version,
            "deployment.environment": settings.environment,
            "deployment.environment.name": settings.environment,
        }
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(config.sample_ratio))
    )
    if config.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif config.exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise _missing_extra(settings, exc) from exc
        headers = {name: value.get_secret_value() for name, value in config.headers.items()}
        exporter = OTLPSpanExporter(endpoint=config.endpoint, headers=headers or None)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install_tracing(app: FastAPI, settings: ChassisSettings) -> TracerProvider | None:
    """Trace every request of `app` with a provider built from `settings.tracing`.

    The provider lands at `chassis.extensions["tracer_provider"]` (add span processors there)
    and is shut down, flushing spans, when the app stops.

    `tracing.instrumentation` picks FastAPI's native telemetry or the instrumentation
    middleware ("auto": native when this FastAPI has it); never both.

    Raises:
        ConfigurationError: tracing is enabled but the `otel` extra is not installed, or
            native telemetry is asked for on a FastAPI release without it.
    """
    config = settings.tracing
    if not config.enabled:
        return None
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise _missing_extra(settings, exc) from exc
    available = native_telemetry_available(app)
    use_native = (
        available if config.instrumentation == "auto" else config.instrumentation == "native"
    )
    if use_native and not available:
        raise ConfigurationError(
            f"{settings.env_var('tracing', 'instrumentation')}=native needs a FastAPI release "
            "with native telemetry (FastAPI(telemetry=...)); upgrade FastAPI or use auto"
        )
    if not use_native:
        try:
            import opentelemetry.instrumentation.asgi  # noqa: F401
        except ImportError as exc:
            raise _missing_extra(settings, exc) from exc
    provider = build_tracer_provider(settings)
    chassis = get_chassis(app)
    chassis.extensions["tracer_provider"] = provider

    excluded = {*config.exclude_paths}
    if settings.health.enabled:
        excluded |= {settings.health.liveness_path, settings.health.readiness_path}
    if settings.metrics.enabled:
        excluded.add(settings.metrics.path)

    if config.set_global_provider and _global_provider_unset(trace.get_tracer_provider()):
        trace.set_tracer_provider(provider)

    # FastAPI keeps its native telemetry settings in this dict; its request handler reads them
    # per request, so configuring them after construction takes effect.
    telemetry: MutableMapping[str, Any] | None = getattr(app, "_telemetry", None)
    if use_native and telemetry is not None:
        _configure_native(telemetry, provider, frozenset(excluded), config.operation_spans)
    else:
        if telemetry is not None:
            # Never both: keep FastAPI's own spans off when the middleware traces.
            telemetry["tracing"] = False
        chassis.outer_middleware.insert(
            0,
            Middleware(
                TracingMiddleware,
                tracer=provider.get_tracer("fastapi_chassis"),
                exclude_paths=excluded,
            ),
        )

    @asynccontextmanager
    async def shutdown_provider(app_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            provider.shutdown()

    chassis.add_resource(shutdown_provider)
    return provider


def _global_provider_unset(provider: Any) -> bool:
    return type(provider).__name__ == "ProxyTracerProvider"


def _configure_native(
    telemetry: MutableMapping[str, Any],
    provider: TracerProvider,
    excluded: frozenset[str],
    operation_spans: bool,
) -> None:
    previous: Callable[[MutableMapping[str, Any]], bool] | None = telemetry.get("exclude")

    def exclude(scope: MutableMapping[str, Any]) -> bool:
        if app_path(scope) in excluded:
            return True
        return previous is not None and previous(scope)

    telemetry["tracer_provider"] = provider
    telemetry["tracing"] = True
    telemetry["operation_spans"] = operation_spans
    telemetry["exclude"] = exclude


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    # Replaces the instrumentation's default, which scans every route to name the span;
    # `_RouteOnSpan` names it from the route Starlette matched.
    method = scope.get("method", "")
    return (method if method in _KNOWN_METHODS else "HTTP"), {}


class TracingMiddleware:
    """opentelemetry-instrumentation's ASGI middleware without its per-request route scan.

    Excluded paths bypass it entirely; the span gets `http.route` and its final name
    ("GET /items/{item_id}") from `scope["route"]` when the response starts.
    """

    def __init__(self, app: ASGIApp, *, tracer: Any, exclude_paths: Iterable[str] = ()) -> None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.metrics import NoOpMeterProvider

        self.bypass = app
        self.exclude_paths = frozenset(exclude_paths)
        # Metrics come from Prometheus; a no-op meter keeps OTel's request metrics free.
        self.app = OpenTelemetryMiddleware(
            _RouteOnSpan(app),
            default_span_details=_span_details,
            tracer=tracer,
            meter=NoOpMeterProvider().get_meter("fastapi_chassis"),
            exclude_spans=["receive", "send"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or app_path(scope) in self.exclude_paths:
            await self.bypass(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _RouteOnSpan:
    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry.trace import get_current_span

        self.app = app
        self._current_span = get_current_span

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span = self._current_span()
        if not span.is_recording():
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")

        def send_with_route(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                template = getattr(scope.get("route"), "path_format", None)
                if template is not None:
                    # Mounted sub-applications: prefix the mount path(s) the router consumed.
                    template = scope.get("root_path", "")[len(root_path) :] + template
                    span.set_attribute("http.route", template)
                    method = scope.get("method", "")
                    span.update_name(f"{method if method in _KNOWN_METHODS else 'HTTP'} {template}")
            return send(message)

        await self.app(scope, receive, send_with_route)
