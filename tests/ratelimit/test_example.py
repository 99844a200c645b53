from __future__ import annotations

from pathlib import Path

from tests.examples._run import run_python

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
from fastapi.testclient import TestClient
from examples.rate_limiting import app

with TestClient(app) as c:
    notes = c.get('/notes')
    assert notes.headers['RateLimit-Policy'] == (
        '"default-second";q=10;w=1, "default-hour";q=1000;w=3600'
    ), notes.headers
    tokens = [c.post('/token') for _ in range(6)]
    assert [t.status_code for t in tokens] == [200] * 5 + [429], tokens
    assert tokens[-1].headers['content-type'] == 'application/problem+json'
    assert 0 < int(tokens[-1].headers['Retry-After']) <= 60
    report = c.get('/reports', headers={'X-API-Key': 'k1'})
    assert '"/reports";q=30;w=3600' in report.headers.get_list('RateLimit-Policy'), report.headers
    assert c.get('/reports', headers={'X-API-Key': 'made-up'}).status_code == 401
"""


def test_rate_limiting_example_runs() -> None:
    run_python(CHECK)
