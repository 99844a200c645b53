from __future__ import annotations

from pathlib import Path

from tests.examples._run import run_python

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
from fastapi.testclient import TestClient
from examples.errors import app

with TestClient(app) as client:
    paid = client.post("/accounts/acc-1/payments", params={"amount": "10"})
    assert paid.json() == {"balance": "20.00"}, paid.text
    short = client.post("/accounts/acc-1/payments", params={"amount": "50"})
    assert short.status_code == 402, short.text
    assert short.headers["content-type"] == "application/problem+json"
    body = short.json()
    assert body.pop("request_id") == short.headers["x-request-id"]
    assert body == {
        "type": "https://errors.example.com/insufficient_funds",
        "title": "Insufficient funds",
        "status": 402,
        "detail": "the payment needs 50, the balance is 20.00",
        "code": "insufficient_funds",
        "balance": "20.00",
        "needed": "50",
    }, short.text
    missing = client.post("/accounts/acc-9/payments", params={"amount": "1"})
    assert missing.json()["code"] == "account_not_found", missing.text
    invalid = client.post("/accounts/acc-1/payments", params={"amount": "lots"})
    assert invalid.json()["errors"][0]["loc"] == "/query/amount", invalid.text
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/accounts/{account_id}/payments"]["post"]["responses"]
    assert set(responses) == {"200", "402", "404", "422"}, responses
"""


def test_errors_example_runs() -> None:
    run_python(CHECK)


def test_demo_documents_and_answers_its_domain_error() -> None:
    from fastapi.testclient import TestClient

    from fastapi_chassis import ChassisSettings
    from fastapi_chassis.demo import create_app

    with TestClient(create_app(ChassisSettings(service_name="chassis-demo"))) as client:
        spec = client.get("/openapi.json").json()
        missing = client.get("/items/99")
    responses = spec["paths"]["/items/{item_id}"]["get"]["responses"]
    assert responses["404"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ProblemDetail"
    }
    assert missing.headers["content-type"] == "application/problem+json"
    body = missing.json()
    assert body.pop("request_id") == missing.headers["x-request-id"]
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "item 99 does not exist",
        "code": "item_not_found",
    }
