"""The benchmark harness still runs and every app answers alike (correctness only, no timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks import report
from benchmarks.__main__ import Variant, plan_variants
from benchmarks.apps import popular_missing
from benchmarks.chassis_app import FULL_DEFAULT
from benchmarks.driver import route_cases

from tests.conftest import ROOT, subprocess_env

ROUTES = [case.label for case in route_cases("token")]


def drive(variant: str, tmp_path: Path, routes: int = 4, auth: str = "auto") -> dict[str, Any]:
    out = tmp_path / f"{variant.replace(':', '_').replace(',', '_')}-{routes}-{auth}.json"
    cmd = [sys.executable, "-m", "benchmarks.driver", variant, "--routes", str(routes)]
    cmd += ["--requests", "5", "--auth", auth, "--out", str(out)]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    result: dict[str, Any] = json.loads(out.read_text())
    assert proc.returncode == 0, result.get("traceback", proc.stderr)
    return result


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return drive("bare", tmp_path_factory.mktemp("bare"))


def test_bare_app_answers_every_route_with_its_expected_status_and_is_timed(
    bare: dict[str, Any],
) -> None:
    for route in ROUTES:
        check = bare["checks"][route]
        assert check["status"] == check["expected"], (route, check)
        assert route in bare["us"]
    assert bare["checks"]["GET /me"]["body"] == {"sub": "user-42"}
    assert len(bare["checks"]["GET /items"]["body"]) == 20


@pytest.mark.parametrize(
    ("variant", "routes"),
    [("chassis", 4), ("chassis:", 4), ("chassis", 60), ("popular", 4), ("chassis/uncached", 4)],
)
def test_app_answers_exactly_like_bare_fastapi(
    variant: str, routes: int, bare: dict[str, Any], tmp_path: Path
) -> None:
    if variant == "popular" and popular_missing():
        pytest.skip(f"popular stack needs the `bench` extra: {popular_missing()}")
    variant, _, auth = variant.partition("/")
    result = drive(variant, tmp_path, routes, auth or "auto")
    for route in ROUTES:
        got, want = result["checks"][route], bare["checks"][route]
        assert (got["status"], got["body"]) == (want["status"], want["body"]), route
        assert route in result["us"]


def test_report_renders_every_section_from_round_results() -> None:
    variants = plan_variants()
    for i, v in enumerate(variants):
        if v.variant.startswith("chassis:") and v.variant != "chassis:":
            v.unavailable = "not wired"
        else:
            v.samples = [dict.fromkeys(ROUTES, 50.0 + i + k) for k in range(3)]
    info = {
        "date": "now",
        "branch": "b",
        "commit": "c",
        "dirty": False,
        "python": "3",
        "cpus": 2,
        "load": (0.0, 0.0, 0.0),
        "versions": dict.fromkeys(("fastapi", "starlette", "pydantic", "uvicorn"), "1"),
        "requests": 5,
        "rounds": 3,
        "http_seconds": "1",
    }
    http = {n: {r: {"rps": 1000.0, "non_2xx": 0} for r in ROUTES} for n in report.MAIN}
    micro = {
        "jwt": {"HS256": {"TokenService.verify": 1000.0}},
        "ratelimit": {"memory limiter": 4000.0},
        "pagination": {
            "rows": 100,
            "size": 10,
            "depths": [{"depth": 5, "offset_ms": 0.4, "cursor_ms": 0.1}],
        },
    }
    text = report.render(info, variants, [], FULL_DEFAULT, ("request_id",), http, None, micro)
    for heading in ("4-route apps", "60-route apps", "Budget", "Per-component", "Loopback"):
        assert heading in text
    assert "| `GET /items/{id}` | 51.0 [50.0–52.0] |" in text
    assert "| JWT HS256: TokenService.verify | 1,000 | 1000.0 |" in text
    assert "| rate limit: memory limiter | 4,000 | 250.0 |" in text
    assert "| 5 | 0.400 | 0.100 | 4.0× |" in text
    assert "`GET /me` with the verified-token cache off" in text
    assert isinstance(variants[0], Variant)


@pytest.mark.parametrize("route", ["GET /items/{id}", "GET /me"])
def test_instruction_count_child_runs_its_requests_without_valgrind(route: str) -> None:
    # The part that runs under valgrind; valgrind itself is left to `python -m
    # benchmarks.instructions` (about a minute per variant).
    cmd = [sys.executable, "-m", "benchmarks.instructions", "--child", "chassis", route]
    proc = subprocess.run(
        [*cmd, "--requests", "20"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_loopback_reports_a_server_that_fails_to_start_instead_of_crashing() -> None:
    from benchmarks.loopback import run_http

    # An unknown variant makes `benchmarks.serve` exit at once; no wrk run is reached.
    results = run_http("wrk", [("no-such-variant", "auto")], subprocess_env(), 0.1, 4)
    assert "server exited" in results["no-such-variant"]["error"]["message"]


def test_fixed_core_answers_like_bare_fastapi_with_the_core_headers() -> None:
    # The hand-written reference layer is a fair floor only if it serves the same answers
    # and adds the same headers as the chassis core stack.
    import asyncio

    from benchmarks.core_floor import HEADERS, ROUTES, _app
    from benchmarks.driver import Lifespan, one_request

    async def serve(variant: str) -> dict[str, Any]:
        built = _app(variant)
        cases = {case.label: case for case in route_cases(built.mint())}
        answers: dict[str, Any] = {}
        async with Lifespan(built.app):
            for route in ROUTES:
                exchange = await one_request(built.app, cases[route], None)
                answers[route] = (exchange.status, b"".join(exchange.chunks), exchange.headers)
        return answers

    bare_answers, core_answers = asyncio.run(serve("bare")), asyncio.run(serve("fixed"))
    for route in ROUTES:
        status, body, headers = core_answers[route]
        assert (status, body) == bare_answers[route][:2], route
        names = {name for name, _ in headers}
        assert names >= {name for name, _ in HEADERS} | {b"x-request-id"}, route


def test_core_floor_prints_a_row_per_app_and_a_cell_per_route() -> None:
    cmd = [sys.executable, "-m", "benchmarks.core_floor", "--rounds", "1", "--requests", "5"]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 5  # header and four apps
    for row in rows[1:]:
        assert row.count(" %)") == 3, row
