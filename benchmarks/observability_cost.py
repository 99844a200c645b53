"""Per-request cost of the chassis' metrics, tracing and health blocks against bare FastAPI.

Raw ASGI calls in one process (no sockets, no HTTP client), so only server-side work is timed,
as process CPU time.
Apps are measured in interleaved rounds (A B C ... A B C ...); the median per-request time of
each is reported with min/max and the ratio to bare FastAPI on the same route count.

    python -m benchmarks.observability_cost [--requests 2000] [--rounds 7]

For comparison it also times the stock integrations this block replaces:
prometheus-fastapi-instrumentator's `instrument()` and opentelemetry-instrumentation-fastapi's
`instrument_app()` (both of which match every route again per request).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from benchmarks.driver import Lifespan, http_scope, time_requests
from fastapi_chassis import build_app
from fastapi_chassis.settings import (
    BodyLimitSettings,
    ChassisSettings,
    HealthSettings,
    MetricsSettings,
    RequestIDSettings,
    SecurityHeadersSettings,
    TracingSettings,
)

ROUTE_COUNTS = (1, 60)


class _DropExporter(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _add_routes(app: FastAPI, count: int) -> None:
    # The measured route is registered last, so route matching is at its worst.
    for n in range(count - 1):

        async def other(item_id: int) -> dict[str, int]:
            return {"id": item_id}

        app.add_api_route(f"/other{n}/{{item_id}}", other, methods=["GET"])

    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app.add_api_route("/items/{item_id}", item, methods=["GET"])


def _settings(*, metrics: bool = False, tracing: bool = False, health: bool = False) -> Any:
    # Every other chassis block off, so each line measures only what it names.
    return ChassisSettings(
        docs={"enabled": False},
        request_id=RequestIDSettings(enabled=False),
        security_headers=SecurityHeadersSettings(enabled=False),
        body_limit=BodyLimitSettings(enabled=False),
        health=HealthSettings(enabled=health),
        metrics=MetricsSettings(enabled=metrics),
        tracing=TracingSettings(enabled=tracing, set_global_provider=False),
    )


def _chassis(routes: int, **blocks: bool) -> FastAPI:
    app = build_app(_settings(**blocks))
    _add_routes(app, routes)
    provider = app.state.chassis.extensions.get("tracer_provider")
    if provider is not None:
        # A realistic exporter path: spans queued for a background batch export.
        provider.add_span_processor(BatchSpanProcessor(_DropExporter()))
    return app


def _bare(routes: int) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    _add_routes(app, routes)
    return app


def _stock_instrumentator(routes: int) -> FastAPI:
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator

    app = _bare(routes)
    Instrumentator(registry=CollectorRegistry()).instrument(app)
    return app


def _stock_otel(routes: int) -> FastAPI:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_DropExporter()))
    app = _bare(routes)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    return app


VARIANTS: dict[str, Callable[[int], FastAPI]] = {
    "bare FastAPI": _bare,
    "chassis, all blocks off": lambda n: _chassis(n),
    "+ health (in-flight counter)": lambda n: _chassis(n, health=True),
    "+ metrics": lambda n: _chassis(n, metrics=True),
    "+ tracing": lambda n: _chassis(n, tracing=True),
    "+ metrics + tracing + health": lambda n: _chassis(n, metrics=True, tracing=True, health=True),
    "stock instrumentator (comparison)": _stock_instrumentator,
    "stock otel instrument_app (comparison)": _stock_otel,
}


async def _time_requests(app: Any, count: int) -> float:
    gc.collect()
    # CPU time of this process (background export threads included), not wall time: on a
    # shared machine, wall time mostly measures the neighbours.
    return await time_requests(app, lambda _: http_scope("/items/42", state={}), count)


async def _run(requests: int, rounds: int) -> None:
    for routes in ROUTE_COUNTS:
        apps = {name: build(routes) for name, build in VARIANTS.items()}
        samples: dict[str, list[float]] = {name: [] for name in apps}
        async with contextlib.AsyncExitStack() as stack:
            for app in apps.values():
                await stack.enter_async_context(Lifespan(app))
                await _time_requests(app, 200)  # warm caches and label children
            for _ in range(rounds):
                for name, app in apps.items():
                    samples[name].append(await _time_requests(app, requests))
        _print_table(routes, samples)


def _print_table(routes: int, samples: dict[str, list[float]]) -> None:
    bare_median = statistics.median(samples["bare FastAPI"])
    bare_min = min(samples["bare FastAPI"])
    print(f"\n{routes}-route app, GET /items/{{id}}: CPU µs per request over the rounds")
    print(
        f"| {'variant':<40} | {'median':>7} | {'min':>6} | {'max':>6} "
        f"| {'× bare (median)':>15} | {'× bare (min)':>12} | {'+µs (min)':>9} |"
    )
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 17}|{'-' * 14}|{'-' * 11}|")
    for name, values in samples.items():
        median, low, high = statistics.median(values), min(values), max(values)
        print(
            f"| {name:<40} | {median:7.1f} | {low:6.1f} | {high:6.1f} "
            f"| {median / bare_median:15.2f} | {low / bare_min:12.2f} | {low - bare_min:+9.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per app")
    args = parser.parse_args()
    asyncio.run(_run(args.requests, args.rounds))


if __name__ == "__main__":
    main()
