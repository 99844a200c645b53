from __future__ import annotations

import random
import socket
import string
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from fastapi_chassis import ChassisSettings, ConfigurationError, MetricsSettings, build_app
from fastapi_chassis.observability.metrics import (
    UNMATCHED,
    count_auth_failure,
    count_problem,
    count_rate_limited,
)
from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]


def _settings(**metrics: Any) -> ChassisSettings:
    return ChassisSettings(metrics=MetricsSettings(enabled=True, **metrics))


def _requests(handler: str, method: str = "GET", status: str = "2xx") -> float:
    labels = {"handler": handler, "method": method, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def _samples(text: str, name: str) -> list[dict[str, str]]:
    return [
        dict(sample.labels)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _app(settings: ChassisSettings) -> FastAPI:
    app = build_app(settings)

    @app.get("/metrics-test/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/metrics-test/items")
    async def create() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/metrics-test/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


def test_scrape_after_traffic_counts_requests_by_template_method_and_status_class() -> None:
    app = _app(_settings())
    template = "/metrics-test/items/{item_id}"
    before = _requests(template)
    before_404 = _requests(template, status="4xx")
    with TestClient(app, raise_server_exceptions=False) as client:
        for item_id in range(3):
            assert client.get(f"/metrics-test/items/{item_id}").status_code == 200
        assert client.get("/metrics-test/items/not-a-number").status_code == 422
        assert client.post("/metrics-test/items").status_code == 200
        assert client.get("/metrics-test/boom").status_code == 500
        client.get("/healthz")
        client.get("/readyz")
        scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    assert _requests(template) - before == 3
    assert _requests(template, status="4xx") - before_404 == 1
    assert _requests("/metrics-test/items", "POST") >= 1
    assert _requests("/metrics-test/boom", status="5xx") >= 1
    handlers = {labels["handler"] for labels in _samples(scrape.text, "http_requests_total")}
    assert "/metrics-test/items/0" not in handlers
    # Health probes and the scrape itself are not measured.
    assert not handlers & {"/healthz", "/readyz", "/metrics"}
    buckets = _samples(scrape.text, "http_request_duration_seconds_bucket")
    assert {"handler": template, "method": "GET", "status": "2xx", "le": "+Inf"} in buckets
    assert "http_requests_inprogress" in scrape.text


@pytest.mark.anyio
async def test_a_scan_of_1000_random_paths_adds_one_label_value() -> None:
    app = _app(_settings())
    rng = random.Random(7)
    before = _requests(UNMATCHED, status="4xx")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(1000):
            path = "/" + "".join(rng.choices(string.ascii_lowercase + "/._-", k=12))
            response = await client.get(path)
            assert response.status_code in (404, 307)
        for method in ("BREW", "PROPFIND", "X" * 50):
            await client.request(method, "/metrics-test/items/1")
        scrape = (await client.get("/metrics")).text
    assert _requests(UNMATCHED, status="4xx") - before >= 950
    samples = _samples(scrape, "http_requests_total")
    handlers = {labels["handler"] for labels in samples}
    methods = {labels["method"] for labels in samples}
    assert len(handlers) < 20, handlers
    assert methods <= {"GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "_OTHER"}
    assert {labels["status"] for labels in samples} <= {"1xx", "2xx", "3xx", "4xx", "5xx"}


def test_routes_of_included_routers_and_mounted_apps_use_their_full_template() -> None:
    app = build_app(_settings())
    router = APIRouter(prefix="/metrics-test/v1")

    @router.get("/users/{user_id}")
    async def user(user_id: str) -> dict[str, str]:
        return {"id": user_id}

    app.include_router(router)
    sub = FastAPI()

    @sub.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    app.mount("/metrics-test/shop", sub)
    with TestClient(app) as client:
        assert client.get("/metrics-test/v1/users/ann").status_code == 200
        assert client.get("/metrics-test/shop/orders/9").status_code == 200
    assert _requests("/metrics-test/v1/users/{user_id}") >= 1
    assert _requests("/metrics-test/shop/orders/{order_id}") >= 1


def test_plain_starlette_routes_are_labelled_by_template_too() -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse

    app = build_app(_settings())

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["name"])

    app.add_route("/metrics-test/plain/{name}", plain)
    before = _requests("/metrics-test/plain/{name}")
    with TestClient(app) as client:
        assert client.get("/metrics-test/plain/a").text == "a"
        assert client.get("/metrics-test/plain/b").text == "b"
    assert _requests("/metrics-test/plain/{name}") - before == 2


def test_chassis_counters_record_problems_auth_failures_and_rate_limits() -> None:
    build_app(_settings())

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        value("chassis_problem_responses_total", code="metrics_test"),
        value("chassis_auth_failures_total", reason="expired"),
        value("chassis_rate_limited_total", policy="login"),
    )
    count_problem("metrics_test")
    count_problem("metrics_test")
    count_auth_failure("expired")
    count_rate_limited("login")
    after = (
        value("chassis_problem_responses_total", code="metrics_test"),
        value("chassis_auth_failures_total", reason="expired"),
        value("chassis_rate_limited_total", policy="login"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1]


def test_metrics_route_is_excluded_from_the_schema_and_can_be_moved() -> None:
    with TestClient(build_app(_settings(path="/internal/metrics"))) as client:
        assert client.get("/internal/metrics").status_code == 200
        assert client.get("/metrics").status_code == 404
        assert "/internal/metrics" not in client.get("/openapi.json").json()["paths"]


def test_bearer_token_protects_the_scrape() -> None:
    app = build_app(_settings(bearer_token=SecretStr("scrape-me")))
    with TestClient(app) as client:
        denied = client.get("/metrics")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
        assert denied.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert ok.status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_separate_port_serves_metrics_outside_the_app() -> None:
    port = _free_port()
    app = _app(_settings(separate_port=port, separate_host="127.0.0.1"))
    with TestClient(app) as client:
        client.get("/metrics-test/items/1")
        assert client.get("/metrics").status_code == 404
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    assert 'handler="/metrics-test/items/{item_id}"' in text
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)


def test_separate_port_with_a_bearer_token_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="CHASSIS_METRICS__BEARER_TOKEN"):
        build_app(_settings(separate_port=9100, bearer_token=SecretStr("x")))


def test_metrics_off_adds_no_route_and_no_middleware() -> None:
    app = build_app(ChassisSettings())
    assert "metrics" not in app.state.chassis.extensions
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("module", ["prometheus_client", "prometheus_fastapi_instrumentator"])
def test_enabling_metrics_without_the_extra_fails_at_startup_naming_it(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigurationError) as caught:
        build_app(_settings())
    message = str(caught.value)
    assert 'pip install "fastapi-chassis[prometheus]"' in message
    assert "CHASSIS_METRICS__ENABLED" in message


WORKER = """
import sys
from fastapi.testclient import TestClient
from fastapi_chassis import ChassisSettings, LoggingSettings, MetricsSettings, build_app
# Logging stays unconfigured: the scrape is read from stdout, where log lines would go.
app = build_app(
    ChassisSettings(
        metrics=MetricsSettings(enabled=True), logging=LoggingSettings(configure=False)
    )
)

@app.get("/work/{n}")
async def work(n: int) -> dict[str, int]:
    return {"n": n}

with TestClient(app) as client:
    if sys.argv[1] == "scrape":
        print(client.get("/metrics").text)
    else:
        for n in range(int(sys.argv[1])):
            assert client.get(f"/work/{n}").status_code == 200
"""


def _run(arg: str, multiproc_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", WORKER, arg],
        cwd=ROOT,
        env=subprocess_env(PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_multiprocess_mode_aggregates_every_worker_in_one_scrape(tmp_path: Path) -> None:
    _run("3", tmp_path)
    _run("4", tmp_path)
    scrape = _run("scrape", tmp_path)
    totals = [
        sample
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == "http_requests_total"
    ]
    assert [(s.labels["handler"], s.value) for s in totals] == [("/work/{n}", 7.0)]
    counts = [
        s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
        if s.name == "http_request_duration_seconds_count"
    ]
    assert counts == [7.0]
    in_progress = [
        s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
        if s.name == "http_requests_inprogress"
    ]
    # Live workers' counts are summed from their files; every request here has finished.
    assert in_progress == [0.0]


def test_reporting_functions_do_nothing_and_import_nothing_while_metrics_are_off() -> None:
    code = (
        "import sys\n"
        "from fastapi_chassis import ChassisSettings, build_app\n"
        "from fastapi_chassis.observability.metrics import (\n"
        "    count_auth_failure, count_problem, count_rate_limited)\n"
        "build_app(ChassisSettings())\n"
        "count_problem('not_found'); count_auth_failure('expired'); count_rate_limited('api')\n"
        "assert 'prometheus_client' not in sys.modules, 'imported prometheus_client'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_no_route_is_matched_twice_per_request_with_metrics_and_tracing_on() -> None:
    from fastapi.routing import APIRoute
    from starlette.routing import Match

    from fastapi_chassis import TracingSettings

    matched: list[str] = []

    class CountingRoute(APIRoute):
        def matches(self, scope: Any) -> tuple[Match, Any]:
            matched.append(self.path)
            return super().matches(scope)

    settings = _settings().model_copy(
        update={
            "tracing": TracingSettings(
                enabled=True, set_global_provider=False, instrumentation="middleware"
            )
        }
    )
    app = build_app(settings)

    async def counted(n: int) -> dict[str, int]:
        return {"n": n}

    app.router.add_api_route(
        "/metrics-test/counted/{n}", counted, methods=["GET"], route_class_override=CountingRoute
    )
    with TestClient(app) as client:
        matched.clear()
        for n in range(3):
            assert client.get(f"/metrics-test/counted/{n}").status_code == 200
    # Only the router matched it: neither metrics nor tracing scan the routes again.
    assert matched == ["/metrics-test/counted/{n}"] * 3


@pytest.mark.anyio
async def test_the_in_progress_gauge_counts_requests_being_served() -> None:
    app = _app(_settings())
    seen: list[float | None] = []
    release = anyio.Event()
    entered = anyio.Event()

    @app.get("/metrics-test/slow")
    async def slow() -> dict[str, bool]:
        entered.set()
        await release.wait()
        return {"ok": True}

    @app.get("/metrics-test/crash-in-progress")
    async def crash() -> None:
        seen.append(REGISTRY.get_sample_value("http_requests_inprogress"))
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(client.get, "/metrics-test/slow")
            await entered.wait()
            await anyio.sleep(0.05)
            seen.append(REGISTRY.get_sample_value("http_requests_inprogress"))
            release.set()
        assert (await client.get("/metrics-test/crash-in-progress")).status_code == 500
        seen.append(REGISTRY.get_sample_value("http_requests_inprogress"))
    assert seen == [3.0, 1.0, 0.0]
