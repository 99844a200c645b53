"""Every block together, as `build_app()` wires them: each error path is decorated alike.

The block tests prove each piece alone; these prove the order of the stack: whichever layer
answers (router, handler, error boundary, body limit, rate limit, auth), the response is
problem+json carrying the request id, the security headers and, when traced, the trace id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from fastapi_chassis import (
    ChassisSettings,
    CurrentPrincipal,
    MetricsSettings,
    RateLimitSettings,
    RequestId,
    build_app,
    get_request_id,
)
from fastapi_chassis.settings import BodyLimitSettings, TracingSettings

SECURITY_HEADERS = (
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
    "cache-control",
)


class Order(BaseModel):
    sku: str
    quantity: int


def full_app(**overrides: Any) -> FastAPI:
    values: dict[str, Any] = {
        "environment": "test",
        "rate_limit": RateLimitSettings(enabled=True, default="5/minute"),
        "body_limit": BodyLimitSettings(max_bytes=1024),
        "metrics": MetricsSettings(enabled=True),
    }
    values.update(overrides)
    app = build_app(ChassisSettings(**values))

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("database password is hunter2")

    @app.post("/orders")
    async def create(order: Order) -> Order:
        return order

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"sub": principal.subject}

    @app.get("/stream")
    async def stream(request_id: RequestId) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield f"{get_request_id() == request_id}\n".encode()

        return StreamingResponse(body(), media_type="text/plain")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(get_request_id() or "none")
        await websocket.close()

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(full_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def assert_decorated_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    for header in SECURITY_HEADERS:
        assert header in response.headers, header
    return body


def test_unhandled_exception_is_a_decorated_500_hiding_the_message(client: TestClient) -> None:
    body = assert_decorated_problem(client.get("/crash"), 500, "internal_error")
    assert "hunter2" not in str(body)


def test_unknown_route_and_wrong_method(client: TestClient) -> None:
    assert_decorated_problem(client.get("/nowhere"), 404, "not_found")
    wrong = client.delete("/orders")
    assert_decorated_problem(wrong, 405, "method_not_allowed")
    assert "POST" in wrong.headers["allow"]


def test_validation_error_is_decorated(client: TestClient) -> None:
    body = assert_decorated_problem(
        client.post("/orders", json={"sku": "a", "quantity": "lots"}), 422, "validation_failed"
    )
    assert body["errors"][0]["loc"] == "/body/quantity"


def test_declared_oversized_body_is_a_decorated_413(client: TestClient) -> None:
    response = client.post(
        "/orders", content=b"x" * 5000, headers={"content-type": "application/json"}
    )
    assert_decorated_problem(response, 413, "content_too_large")


def test_chunked_oversized_body_is_a_decorated_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 512

    response = client.post("/orders", content=chunks(), headers={"content-type": "text/plain"})
    assert_decorated_problem(response, 413, "content_too_large")


def test_bad_token_is_a_decorated_401_with_rfc6750_challenge(client: TestClient) -> None:
    response = client.get("/me", headers={"Authorization": "Bearer not.a.token"})
    assert_decorated_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_rate_limit_rejection_is_a_decorated_429_and_the_handler_does_not_run() -> None:
    calls: list[int] = []
    app = full_app(rate_limit=RateLimitSettings(enabled=True, default="2/minute"))

    @app.get("/counted")
    async def counted() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    with TestClient(app) as client:
        assert [client.get("/counted").status_code for _ in range(2)] == [200, 200]
        rejected = client.get("/counted")
    assert_decorated_problem(rejected, 429, "rate_limited")
    assert int(rejected.headers["retry-after"]) >= 1
    assert "ratelimit" in rejected.headers
    assert len(calls) == 2


def test_streaming_generator_sees_its_request_id(client: TestClient) -> None:
    response = client.get("/stream")
    assert response.text == "True\nTrue\nTrue\n"
    assert "x-request-id" in response.headers


def test_websocket_passes_through_the_whole_stack(client: TestClient) -> None:
    with client.websocket_connect("/ws") as websocket:
        assert websocket.receive_text() != "none"


def sample(scrape: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(scrape):
        for item in family.samples:
            if item.name == name and item.labels == labels:
                return float(item.value)
    return 0.0


def test_chassis_counters_count_problems_auth_failures_and_rejections() -> None:
    # The process-wide registry outlives apps, so each check is a difference of two scrapes.
    app = full_app(rate_limit=RateLimitSettings(enabled=True, default="2/minute"))
    with TestClient(app) as client:
        before = client.get("/metrics").text
        client.get("/nowhere")
        client.get("/me", headers={"Authorization": "Bearer not.a.token"})
        client.get("/me")
        after = client.get("/metrics").text

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    problems = "chassis_problem_responses_total"
    assert delta(problems, code="not_found") == 1
    assert delta(problems, code="rate_limited") == 1
    assert delta("chassis_rate_limited_total", policy="default") == 1
    assert delta("chassis_auth_failures_total", reason="malformed_token") == 1
    assert delta("chassis_auth_failures_total", reason="missing_credentials") == 0


def test_problem_bodies_carry_the_trace_id_of_the_server_span() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    app = full_app(
        tracing=TracingSettings(
            enabled=True, set_global_provider=False, instrumentation="middleware"
        ),
        rate_limit=RateLimitSettings(enabled=False),
    )
    exporter = InMemorySpanExporter()
    app.state.chassis.extensions["tracer_provider"].add_span_processor(
        SimpleSpanProcessor(exporter)
    )
    with TestClient(app) as client:
        body = client.get("/nowhere").json()
    (span,) = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert span.context is not None
    assert body["trace_id"] == format(span.context.trace_id, "032x")


def test_exempt_and_excluded_paths_hold_behind_a_root_path() -> None:
    # uvicorn --root-path /api puts the prefix in front of scope["path"]; probes and scrapes
    # must still be exempt from the rate limit and left out of the request metrics.
    app = full_app(rate_limit=RateLimitSettings(enabled=True, default="2/minute"))
    with TestClient(app, root_path="/api") as client:
        assert [client.get("/api/healthz").status_code for _ in range(5)] == [200] * 5
        assert [client.get("/api/metrics").status_code for _ in range(3)] == [200] * 3
        scrape = client.get("/api/metrics").text
        assert client.get("/api/nowhere").status_code == 404
        assert client.get("/api/nowhere").status_code == 404
        assert client.get("/api/nowhere").status_code == 429
    assert 'handler="/healthz"' not in scrape
    assert 'handler="/metrics"' not in scrape


def test_app_path_strips_only_a_whole_root_path_segment() -> None:
    from fastapi_chassis._scope import app_path

    assert app_path({"path": "/api/healthz", "root_path": "/api"}) == "/healthz"
    assert app_path({"path": "/api", "root_path": "/api"}) == "/"
    assert app_path({"path": "/apiary", "root_path": "/api"}) == "/apiary"
    assert app_path({"path": "/healthz", "root_path": ""}) == "/healthz"
