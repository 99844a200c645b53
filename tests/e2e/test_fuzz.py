"""Fuzz the running demo from its own OpenAPI document with schemathesis.

Every documented operation gets valid and invalid requests (a bounded number, derandomized so CI
runs repeat) with a valid bearer token; no answer may be a 5xx or break its documented schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.e2e.conftest import run_demo

EXAMPLES = 25  # per operation and generation mode
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
#: Not fuzzed: logout would revoke the token every other operation uses (the worker tests cover
#: it); /slow only sleeps.
SKIPPED = {("POST", "/auth/logout"), ("GET", "/slow")}


def _token(base_url: str) -> str:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        account = {"username": "fuzzer", "password": "fuzzing-password"}
        assert client.post("/users", json=account).status_code == 201
        token = client.post("/auth/token", data=account)
        assert token.status_code == 200, token.text
        return str(token.json()["access_token"])


def _fuzz(operation: Any, mode: Any, base_url: str, headers: dict[str, str]) -> list[str]:
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
        except Exception as exc:  # schemathesis' FailureGroup; keep the first per operation/mode
            if not failures:
                failures.append(f"{operation.label} [{mode.value}]: {exc}")

    try:
        run()
    except Unsatisfiable:
        # Negative mode has nothing to break in an operation without inputs (e.g. GET /).
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    return failures


def test_no_operation_answers_5xx_or_outside_its_documented_schema(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    with run_demo(demo_env, str(tmp_path), workers=1) as server:
        schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
        headers = {"Authorization": f"Bearer {_token(server.base_url)}"}
        operations = [result.ok() for result in schema.get_all_operations()]
        fuzzed = [op for op in operations if (op.method.upper(), op.path) not in SKIPPED]
        assert len(fuzzed) >= 15, [op.label for op in operations]
        failures: list[str] = []
        for operation in fuzzed:
            for mode in schemathesis.GenerationMode:
                failures += _fuzz(operation, mode, server.base_url, headers)
        log = server.log()
    assert not failures, "\n\n".join(failures)
    assert "Traceback" not in log, log
