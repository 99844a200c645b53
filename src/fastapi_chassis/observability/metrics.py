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
import math
import os
import threading
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Sequence
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
        from prometheus_client import Counter, Gauge, Histogram, values

        self.registry = registry
        self.buckets = tuple(buckets)
        labels = ("method", "status", "handler")
        # In one process, requests are counted in plain lists and added to the metrics when
        # the registry is collected (see `observe`). Multiprocess mode writes every update to
        # its shared files, so there the metrics are updated per request; so they are when
        # this prometheus_client's histograms do not keep their values where `flush()` adds.
        #: Upper bounds as the histogram has them (+Inf last), for `bisect_left`.
        self._bounds = tuple(float(bound) for bound in self.buckets)
        if not self._bounds or self._bounds[-1] != math.inf:
            self._bounds += (math.inf,)
        self._counting = values.ValueClass is values.MutexValue and _can_add_many(self._bounds)
        request_registry = None if self._counting else registry
        self.requests = Counter(
            "http_requests_total",
            "Requests by method, status class and route template.",
            labels,
            registry=request_registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Request duration to the last body byte, by method, status class and route template.",
            labels,
            buckets=self.buckets,
            registry=request_registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._children: dict[tuple[int, str], Any] = {}
        #: Label key -> [count, sum of seconds, count per bucket...] not yet collected.
        self._pending: dict[tuple[str, str, int], list[Any]] = {}
        self._pending_lock = threading.Lock()
        #: Held while pending counts are moved into the metrics: a second collection waits
        #: for them instead of showing totals without them.
        self._flush_lock = threading.Lock()
        if self._counting:
            # First, so that a name already taken in `registry` leaves nothing registered.
            registry.register(_Collecting(self))
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
        #: Requests being served, when the gauge reads it at scrape time (single process).
        self.active = 0
        if self._counting:
            # The gauge reads the plain counter when scraped, instead of two locked updates
            # per request.
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
        """Count one request and record its duration.

        In one process this adds to a list under one lock, instead of three locked updates
        of prometheus_client values through five Python calls; `flush()` adds the lists to
        the metrics before every scrape.
        """
        key = (template, method, status_class)
        if not self._counting:
            counter, histogram = self._children_of(key)
            counter.inc()
            histogram.observe(seconds)
            return
        with self._pending_lock:
            pending = self._pending.get(key)
            if pending is None:
                self._children_of(key)  # the series exist from their first request on
                pending = self._pending[key] = [0, 0.0, *(0 for _ in self._bounds)]
            pending[0] += 1
            pending[1] += seconds
            # The first bucket whose upper bound is >= seconds, as `Histogram.observe` picks.
            pending[2 + bisect_left(self._bounds, seconds)] += 1

    def flush(self) -> None:
        """Add the requests `observe()` counted since the last call to the metrics.

        Runs before every collection of the registry (a scrape, `get_sample_value()`).
        """
        with self._flush_lock:
            with self._pending_lock:
                pending, self._pending = self._pending, {}
            for key, (count, total, *per_bucket) in pending.items():
                counter, histogram = self._children_of(key)
                counter.inc(count)
                # prometheus_client has no public call that adds many observations at once; a
                # histogram child keeps its sum and per-bucket counts as values with `inc()`.
                histogram._sum.inc(total)
                for bucket, observed in zip(histogram._buckets, per_bucket, strict=True):
                    if observed:
                        bucket.inc(observed)

    def _children_of(self, key: tuple[str, str, int]) -> tuple[Any, Any]:
        children = self._request_children.get(key)
        if children is None:
            template, method, status_class = key
            status = _STATUS_CLASSES[status_class]
            children = (
                self.requests.labels(method, status, template),
                self.duration.labels(method, status, template),
            )
            self._request_children[key] = children
        return children

    def count(self, counter: Any, label: str) -> None:
        """Increment `counter` (one of this object's chassis counters) for `label`."""
        key = (id(counter), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(label)
        child.inc()


def _can_add_many(bounds: Sequence[float]) -> bool:
    """Whether this prometheus_client's histograms keep the values `flush()` adds to.

    `bounds`: the upper bounds, +Inf last.
    """
    from prometheus_client import Histogram

    probe = Histogram("chassis_probe", "", buckets=bounds, registry=None)
    values = getattr(probe, "_buckets", None)
    return (
        isinstance(values, list)
        and len(values) == len(bounds)
        and all(hasattr(value, "inc") for value in [*values, getattr(probe, "_sum", None)])
    )


class _Collecting:
    """Registers the request counter and histogram: adds what is pending, then collects them."""

    def __init__(self, metrics: RequestMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Any]:
        return [*self._metrics.requests.describe(), *self._metrics.duration.describe()]

    def collect(self) -> Iterator[Any]:
        self._metrics.flush()
        yield from self._metrics.requests.collect()
        yield from self._metrics.duration.collect()


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
