from __future__ import annotations

from pathlib import Path

from tests.examples._run import run_python

ROOT = Path(__file__).resolve().parents[2]


def test_observability_example_exposes_metrics_and_prints_one_span_per_request() -> None:
    code = (
        "from fastapi.testclient import TestClient\n"
        "from examples.observability import app\n"
        "with TestClient(app) as c:\n"
        "    body = c.get('/orders/5').json()\n"
        "    assert len(body['trace_id']) == 32, body\n"
        "    text = c.get('/metrics').text\n"
        "    assert 'http_requests_total{handler=\"/orders/{order_id}\"' in text, text\n"
        "    print('TRACE', body['trace_id'])\n"
    )
    stdout = run_python(code)
    trace_id = stdout.split("TRACE ")[1].split()[0]
    # The console exporter printed the request's span (flushed at shutdown).
    assert stdout.count('"name": "GET /orders/{order_id}"') == 1
    assert trace_id in stdout
