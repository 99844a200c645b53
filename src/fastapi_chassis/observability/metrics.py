"""Prometheus metrics (extra `prometheus`): request RED metrics and the chassis' own counters.

Request metrics are recorded by `MetricsMiddleware`, a pure-ASGI middleware that labels each
request with the route template Starlette already matched (`scope["route"]`), so the cost per
request does not grow with the number of routes. prometheus-fastapi-instrumentator serves the
exposition endpoint (including `PROMETHEUS_MULTIPROC_DIR` multiprocess aggregation); the metric
names follow its defaults, so its dashboards keep working.

Other blocks report through `count_problem`, `count_auth_failure` and `count_rate_limited`;
they cost one global read when metrics are off or the extra is not installed.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis import _counters
from fastapi_chassis._chassis import get_chassis
from fastapi_chassis._counters import count_auth_failure, count_problem, count_rate_limited
from fastapi_chassis._scope import app_path
from fastapi_chassis.errors import ConfigurationError, Unauthorized

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from fastapi_chassis.settings import ChassisSettings

__all__ = [
    "UNMATCHED",
    "MetricsMiddleware",
    "RequestMetrics",
    "count_auth_failure",
    "count_problem",
    "count_rate_limited",
    "install_metrics",
]

#: The `handler` label of requests no route matched (404s, scans), so label sets stay bounded.
UNMATCHED = "<unmatched>"

_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY"}
)
_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
_INSTALL_HINT = 'pip install "fastapi-chassis[prometheus]"'


class RequestMetrics:
    """The metric objects of one Prometheus registry, with cached label children."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self.buckets = tuple(buckets)
        labels = ("method", "status", "handler")
        self.requests = Counter(
            "http_requests_total",
            "Requests by method, status class and route template.",
            labels,
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Request duration to the last body byte, by method, status class and route template.",
            labels,
            buckets=self.buckets,
            registry=registry,
        )
        self.in_progress = Gauge(
            "http_requests_inprogress",
            "Requests being served.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.rate_limited = Counter(
            "chassis_rate_limited_total",
            "Requests rejected by rate limiting, by policy.",
            ("policy",),
            registry=registry,
        )
        self.auth_failures = Counter(
            "chassis_auth_failures_total",
            "Failed authentications, by reason.",
            ("reason",),
            registry=registry,
        )
        self.problems = Counter(
            "chassis_problem_responses_total",
            "problem+json responses, by error code.",
            ("code",),
            registry=registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._children: dict[tuple[int, str], Any] = {}
        #: Requests being served, when the gauge reads it at scrape time (single process).
        self.active = 0
        from prometheus_client import values

        # In one process the gauge reads a plain counter when scraped, instead of two locked
        # updates per request; multiprocess mode needs the updates in its shared files.
        self._counting = values.ValueClass is values.MutexValue
        if self._counting:
            self.in_progress.set_function(lambda: self.active)

    def started(self) -> None:
        """One more request in progress."""
        if self._counting:
            self.active += 1
        else:
            self.in_progress.inc()

    def finished(self) -> None:
        """One request fewer in progress."""
        if self._counting:
            self.active -= 1
        else:
            self.in_progress.dec()

    def observe(self, template: str, method: str, status_class: int, seconds: float) -> None:
        """Count one request and record its duration."""
        key = (template, method, status_class)
        children = self._request_children.get(key)
        if children is None:
            status = _STATUS_CLASSES[status_class]
            children = (
                self.requests.labels(method, status, template),
                self.duration.labels(method, status, template),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count(self, counter: Any, label: str) -> None:
        """Increment `counter` (one of this object's chassis counters) for `label`."""
        key = (id(counter), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(label)
        child.inc()


_by_registry: dict[int, RequestMetrics] = {}


def _metrics_for(registry: CollectorRegistry, buckets: Sequence[float]) -> RequestMetrics:
    # Prometheus refuses a second metric of the same name in one registry: apps built in the
    # same process share the objects (one process is one scrape target anyway).
    metrics = _by_registry.get(id(registry))
    if metrics is None or metrics.registry is not registry:
        metrics = _by_registry[id(registry)] = RequestMetrics(registry, buckets)
    elif metrics.buckets != tuple(buckets):
        raise ConfigurationError(
            "CHASSIS_METRICS__BUCKETS differs from the buckets another app already registered "
            "in this Prometheus registry; use the same buckets or a separate registry"
        )
    return metrics


class MetricsMiddleware:
    """Records request count, duration and in-progress gauge per route template (pure ASGI)."""

    def __init__(
        self, app: ASGIApp, *, metrics: RequestMetrics, exclude_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.exclude_paths = frozenset(exclude_paths)
        # Plain Starlette routes on older Starlette leave only the endpoint in the scope.
        self._endpoint_templates: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or app_path(scope) in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        status = 500
        root_path = scope.get("root_path", "")

        def send_status(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        metrics = self.metrics
        metrics.started()
        started = perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.finished()
            self._record(scope, root_path, status, perf_counter() - started)

    def _record(self, scope: Scope, root_path: str, status: int, seconds: float) -> None:
        """Count one finished request (`status` 500 when no response started)."""
        method = scope["method"]
        if method not in _KNOWN_METHODS:
            method = "_OTHER"
        status_class = status // 100 if 100 <= status < 600 else 0
        self.metrics.observe(self._template(scope, root_path), method, status_class, seconds)

    def _template(self, scope: Scope, root_path: str) -> str:
        route = scope.get("route")
        template = getattr(route, "path_format", None) if route is not None else None
        if template is None:
            endpoint = scope.get("endpoint")
            if endpoint is None:
                return UNMATCHED
            template = self._endpoint_templates.get(id(endpoint))
            if template is None:
                template = self._find_endpoint(scope, endpoint)
            if template is UNMATCHED:
                return UNMATCHED
        inner_root = scope.get("root_path", "")
        if inner_root != root_path:
            # Mounted sub-application: prefix the mount path(s) the router consumed.
            prefix = inner_root[len(root_path) :]
            if isinstance(route, Mount) and prefix.endswith(route.path):
                prefix = prefix[: len(prefix) - len(route.path)]
            template = prefix + template
        return template

    def _find_endpoint(self, scope: Scope, endpoint: Any) -> str:
        # Once per endpoint: later requests hit the cache, so no per-request route scan.
        app = scope.get("app")
        for route in getattr(app, "routes", ()):
            if getattr(route, "endpoint", None) is endpoint:
                template = str(route.path_format)
                break
        else:
            template = UNMATCHED
        self._endpoint_templates[id(endpoint)] = template
        return template


def install_metrics(
    app: FastAPI, settings: ChassisSettings, *, registry: CollectorRegistry | None = None
) -> RequestMetrics | None:
    """Measure requests and expose `metrics.path` (or `metrics.separate_port`).

    The metrics land at `chassis.extensions["metrics"]`. `registry` defaults to
    prometheus_client's global registry, so your own metrics appear in the same scrape.

    Raises:
        ConfigurationError: metrics are enabled but the `prometheus` extra is not installed,
            or the settings contradict each other.
    """
    config = settings.metrics
    if not config.enabled:
        return None
    env = settings.env_var("metrics", "enabled")
    try:
        import prometheus_client
        from prometheus_fastapi_instrumentator import Instrumentator
    except ImportError as exc:
        raise ConfigurationError(
            f"{env} is true but Prometheus support is not installed ({exc.name} is missing); "
            f"run `{_INSTALL_HINT}` or set {env}=false"
        ) from exc
    if config.separate_port is not None and config.bearer_token is not None:
        raise ConfigurationError(
            f"{settings.env_var('metrics', 'bearer_token')} protects the in-app metrics route "
            f"only; the separate port ({settings.env_var('metrics', 'separate_port')}) has no "
            "authentication. Unset one of them (restrict the port with a network policy)"
        )
    metrics = _metrics_for(registry or prometheus_client.REGISTRY, config.buckets)
    _counters.activate(metrics)

    chassis = get_chassis(app)
    chassis.extensions["metrics"] = metrics
    excluded = {config.path, *config.exclude_paths}
    if settings.health.enabled:
        excluded |= {settings.health.liveness_path, settings.health.readiness_path}
    chassis.add_middleware(MetricsMiddleware, metrics=metrics, exclude_paths=excluded)

    if config.separate_port is not None:
        chassis.add_resource(
            _separate_server(metrics.registry, config.separate_host, config.separate_port)
        )
        return metrics
    route_options: dict[str, Any] = {}
    if config.bearer_token is not None:
        from fastapi import Depends

        route_options["dependencies"] = [
            Depends(_bearer_check(config.bearer_token.get_secret_value().encode()))
        ]
    Instrumentator(registry=metrics.registry).expose(
        app, endpoint=config.path, include_in_schema=False, **route_options
    )
    return metrics


def _bearer_check(token: bytes) -> Any:
    expected = b"Bearer " + token

    def require_token(request: Request) -> None:
        given = request.headers.get("authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, expected):
            raise Unauthorized(
                "metrics need a bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    return require_token


def _separate_server(registry: CollectorRegistry, host: str, port: int) -> Any:
    @asynccontextmanager
    async def serve(app: Any) -> AsyncIterator[None]:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        served = registry
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            served = CollectorRegistry()
            multiprocess.MultiProcessCollector(served)  # type: ignore[no-untyped-call]
        server, thread = start_http_server(port, host, served)
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    return serve
