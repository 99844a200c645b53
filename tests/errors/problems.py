"""Assertions shared by the error tests."""

from __future__ import annotations

from typing import Any

import httpx

from fastapi_chassis import ProblemDetail
from tests.errors.conftest import REQUEST_ID


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A decorated problem+json response with `status` in both places; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    ProblemDetail.model_validate(body)
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == REQUEST_ID == response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    return body
