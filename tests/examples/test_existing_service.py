"""examples/existing_service: what install() changes on a service that exists, and what stays."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.examples._run import last_line, run_python

PROBE = """
    import json
    from fastapi.testclient import TestClient
    from examples.existing_service.{module} import app

    def seen(response):
        kind = response.headers["content-type"]
        return {{
            "status": response.status_code,
            "type": kind,
            "body": response.json() if "json" in kind else response.text,
            "headers": {{k: v for k, v in response.headers.items() if k != "content-length"}},
        }}

    with TestClient(app, raise_server_exceptions=False) as client:
        out = {{
            "ok": seen(client.get("/stock/apple", headers={{"X-Request-ID": "trace-7"}})),
            "missing": seen(client.get("/stock/kiwi")),
            "invalid": seen(client.post("/orders", json={{"sku": "apple", "quantity": 0}})),
            "domain": seen(client.post("/orders", json={{"sku": "pear", "quantity": 1}})),
            "crash": seen(client.get("/report")),
            "v2": seen(client.get("/v2/stock/kiwi")),
        }}
    print(json.dumps(out))
"""


def probe(module: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(last_line(run_python(PROBE.format(module=module))))
    return result


@pytest.fixture(scope="module")
def before() -> dict[str, Any]:
    return probe("before")


@pytest.fixture(scope="module")
def after() -> dict[str, Any]:
    return probe("after")


def test_before_the_service_answers_errors_in_its_own_shapes(before: dict[str, Any]) -> None:
    assert before["missing"]["body"] == {"detail": "no product 'kiwi'"}
    assert before["crash"]["type"].startswith("text/plain")
    assert "x-request-id" not in before["ok"]["headers"]
    assert before["v2"]["status"] == 404  # that route is only added in after.py


def test_routes_lifespan_and_own_exception_handler_are_kept(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    assert after["ok"]["body"] == before["ok"]["body"] == {"apple": 3}  # lifespan filled stock
    assert after["domain"]["status"] == 409
    assert after["domain"]["type"] == "application/json"
    assert (
        after["domain"]["body"]
        == before["domain"]["body"]
        == {
            "error": "out_of_stock",
            "sku": "pear",
        }
    )


def test_own_middleware_still_runs_inside_the_chassis(after: dict[str, Any]) -> None:
    for name in ("ok", "missing", "invalid", "domain"):
        headers = after[name]["headers"]
        assert headers["x-api-version"] == "2024-06-01", name  # @app.middleware("http")
        assert headers["server-timing"].startswith("app;dur="), name  # pure ASGI


def test_framework_errors_become_problem_json_with_the_request_id(
    after: dict[str, Any],
) -> None:
    missing = after["missing"]
    assert missing["type"] == "application/problem+json"
    assert missing["body"]["detail"] == "no product 'kiwi'"
    assert missing["body"]["request_id"] == missing["headers"]["x-request-id"]
    invalid = after["invalid"]
    assert invalid["status"] == 422
    assert invalid["type"] == "application/problem+json"
    assert [e["loc"] for e in invalid["body"]["errors"]] == ["/body/quantity"]


def test_a_crash_is_a_problem_json_500_without_internals(after: dict[str, Any]) -> None:
    crash = after["crash"]
    assert crash["status"] == 500
    assert crash["type"] == "application/problem+json"
    assert crash["body"]["code"] == "internal_error"
    assert "ZeroDivision" not in json.dumps(crash["body"])
    assert crash["body"]["request_id"] == crash["headers"]["x-request-id"]
    assert crash["headers"]["x-content-type-options"] == "nosniff"


def test_every_response_gets_request_id_and_security_headers(after: dict[str, Any]) -> None:
    assert after["ok"]["headers"]["x-request-id"] == "trace-7"  # a caller's id is kept
    for name, seen in after.items():
        headers = seen["headers"]
        assert headers["x-request-id"], name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["x-frame-options"] == "DENY", name
        assert "content-security-policy" in headers, name


def test_new_routes_raise_chassis_errors_beside_the_old_ones(after: dict[str, Any]) -> None:
    assert after["v2"]["status"] == 404
    assert after["v2"]["body"]["code"] == "unknown_sku"
