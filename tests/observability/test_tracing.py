from __future__ import annotations

import sys
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from fastapi_chassis import (
    ChassisSettings,
    ConfigurationError,
    MetricsSettings,
    TracingSettings,
    build_app,
)
from fastapi_chassis.observability.tracing import (
    build_tracer_provider,
    current_span_id,
    current_trace_id,
    native_telemetry_available,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"

# Both instrumentations where this FastAPI has native telemetry, else only the middleware.
MODES = [False, True] if native_telemetry_available(FastAPI()) else [False]


def _traced_app(
    native: bool, **tracing: Any
) -> tuple[FastAPI, InMemorySpanExporter, dict[str, str | None]]:
    settings = ChassisSettings(
        service_name="orders",
        version="2.0.0",
        environment="test",
        tracing=TracingSettings(
            enabled=True,
            set_global_provider=False,
            instrumentation="native" if native else "middleware",
            **tracing,
        ),
        metrics=MetricsSettings(enabled=True),
    )
    app = build_app(settings)
    exporter = InMemorySpanExporter()
    app.state.chassis.extensions["tracer_provider"].add_span_processor(
        SimpleSpanProcessor(exporter)
    )
    seen: dict[str, str | None] = {}

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, int]:
        seen["trace_id"] = current_trace_id()
        seen["span_id"] = current_span_id()
        return {"id": order_id}

    return app, exporter, seen


@pytest.mark.parametrize("native", MODES)
def test_problem_bodies_carry_the_trace_id_of_their_request(native: bool) -> None:
    app, exporter, _ = _traced_app(native)
    with TestClient(app) as client:
        invalid = client.get("/orders/x")
    (span,) = _server_spans(exporter)
    assert invalid.status_code == 422
    assert invalid.json()["trace_id"] == format(span.context.trace_id, "032x")


def test_problem_bodies_have_no_trace_id_without_tracing() -> None:
    with TestClient(build_app(ChassisSettings(environment="test"))) as client:
        assert "trace_id" not in client.get("/nowhere").json()


def _server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]


def _status(span: ReadableSpan) -> Any:
    attributes = span.attributes or {}
    return attributes.get("http.response.status_code", attributes.get("http.status_code"))


@pytest.mark.parametrize("native", MODES)
def test_one_server_span_per_request_with_route_and_status(native: bool) -> None:
    app, exporter, seen = _traced_app(native)
    with TestClient(app) as client:
        assert client.get("/orders/7").status_code == 200
        assert client.get("/orders/x").status_code == 422
        assert client.get("/nowhere").status_code == 404
    spans = _server_spans(exporter)
    assert len(spans) == 3
    ok, invalid, missing = spans
    assert ok.name == "GET /orders/{order_id}"
    assert (ok.attributes or {})["http.route"] == "/orders/{order_id}"
    assert _status(ok) == 200
    assert _status(invalid) == 422
    assert _status(missing) == 404
    assert "http.route" not in (missing.attributes or {})
    assert ok.parent is None
    # The handler saw the server span as current.
    assert seen["trace_id"] == format(ok.context.trace_id, "032x")
    assert seen["span_id"] == format(ok.context.span_id, "016x")
    resource = ok.resource.attributes
    assert resource["service.name"] == "orders"
    assert resource["service.version"] == "2.0.0"
    assert resource["deployment.environment"] == "test"


@pytest.mark.parametrize("native", MODES)
def test_incoming_traceparent_becomes_the_parent(native: bool) -> None:
    app, exporter, _ = _traced_app(native)
    with TestClient(app) as client:
        client.get("/orders/1", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    (span,) = _server_spans(exporter)
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert span.parent.is_remote
    assert format(span.parent.span_id, "016x") == PARENT_ID


@pytest.mark.parametrize("native", MODES)
@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # forbidden version
        "00-xyz-abc-01",
        "\x1b[31mnot a header",
    ],
)
def test_invalid_traceparent_is_ignored_and_a_new_trace_starts(
    native: bool, traceparent: str
) -> None:
    app, exporter, _ = _traced_app(native)
    with TestClient(app) as client:
        assert client.get("/orders/1", headers={"traceparent": traceparent}).status_code == 200
    (span,) = _server_spans(exporter)
    assert span.parent is None
    assert span.context.is_valid
    assert format(span.context.trace_id, "032x") != TRACE_ID


@pytest.mark.parametrize("native", MODES)
def test_health_and_metrics_paths_are_not_traced(native: bool) -> None:
    app, exporter, _ = _traced_app(native, exclude_paths=["/orders/0"])
    with TestClient(app) as client:
        for path in ("/healthz", "/readyz", "/metrics", "/orders/0"):
            assert client.get(path).status_code == 200
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize("native", MODES)
def test_parent_based_sampler_follows_the_caller_and_the_ratio(native: bool) -> None:
    app, exporter, seen = _traced_app(native, sample_ratio=0.0)
    with TestClient(app) as client:
        client.get("/orders/1")
        assert exporter.get_finished_spans() == ()
        # Not recorded, yet the context still carries a trace id for logs and errors.
        assert seen["trace_id"] is not None
        client.get("/orders/1", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    (span,) = _server_spans(exporter)
    assert format(span.context.trace_id, "032x") == TRACE_ID


@pytest.mark.parametrize("native", MODES)
def test_exception_in_handler_still_ends_the_one_server_span(native: bool) -> None:
    app, exporter, _ = _traced_app(native)

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("nope")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/fail").status_code == 500
    (span,) = _server_spans(exporter)
    assert not span.status.is_ok


def test_trace_ids_are_none_outside_a_span() -> None:
    assert current_trace_id() is None
    assert current_span_id() is None


def test_build_app_with_tracing_makes_a_provider_and_never_sets_global_when_told() -> None:
    from opentelemetry import trace

    before = trace.get_tracer_provider()
    settings = ChassisSettings(tracing=TracingSettings(enabled=True, set_global_provider=False))
    app = build_app(settings)
    provider = app.state.chassis.extensions["tracer_provider"]
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with TestClient(app) as client:
        client.get("/ping")
    assert len(_server_spans(exporter)) == 1
    assert trace.get_tracer_provider() is before


@pytest.mark.parametrize("exporter", ["console", "otlp"])
def test_exporters_are_built_from_settings(exporter: str) -> None:
    settings = ChassisSettings(
        tracing=TracingSettings(
            enabled=True,
            exporter=exporter,
            endpoint="http://127.0.0.1:1/v1/traces",
            headers={"x-api-key": "k"},
        )
    )
    provider = build_tracer_provider(settings)
    processors = provider._active_span_processor._span_processors
    assert len(processors) == 1
    provider.shutdown()


@pytest.mark.parametrize(
    "module", ["opentelemetry", "opentelemetry.sdk.resources", "opentelemetry.sdk.trace"]
)
def test_enabling_tracing_without_the_extra_fails_at_startup_naming_it(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    settings = ChassisSettings(tracing=TracingSettings(enabled=True, set_global_provider=False))
    with pytest.raises(ConfigurationError) as caught:
        build_app(settings)
    assert 'pip install "fastapi-chassis[otel]"' in str(caught.value)
    assert "CHASSIS_TRACING__ENABLED" in str(caught.value)


def test_missing_instrumentation_package_is_reported_on_the_middleware_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.asgi", None)
    tracing = TracingSettings(enabled=True, set_global_provider=False, instrumentation="middleware")
    with pytest.raises(ConfigurationError, match=r"fastapi-chassis\[otel\]"):
        build_app(ChassisSettings(tracing=tracing))


@pytest.mark.skipif(bool(MODES[1:]), reason="this FastAPI has native telemetry")
def test_asking_for_native_telemetry_on_an_older_fastapi_fails_clearly() -> None:
    tracing = TracingSettings(enabled=True, set_global_provider=False, instrumentation="native")
    with pytest.raises(ConfigurationError, match="CHASSIS_TRACING__INSTRUMENTATION"):
        build_app(ChassisSettings(tracing=tracing))
