"""The docs' example files run and do what their pages say."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, subprocess_env

CHECKS = {
    "request_id": """
        from examples.request_id import AUDIT, app
        with TestClient(app) as c:
            r = c.post("/orders/7", headers={"X-Request-ID": "checkout-42"})
            assert r.json() == {"order": 7, "request_id": "checkout-42"}, r.text
            assert r.headers["x-request-id"] == "checkout-42"
        assert AUDIT == ["order 7 placed by request checkout-42"], AUDIT
    """,
    "security_headers": """
        from examples.security_headers import app
        with TestClient(app) as c:
            prices = c.get("/prices").headers
            assert prices["cache-control"] == "no-store"
            assert prices["cross-origin-resource-policy"] == "same-site"
            assert prices["cross-origin-embedder-policy"] == "require-corp"
            assert prices["x-frame-options"] == "DENY"
            assert c.get("/catalog").headers["cache-control"] == "public, max-age=300"
    """,
    "body_limit": """
        from examples.body_limit import app
        with TestClient(app) as c:
            assert c.post("/notes", json={"a": "b"}).json() == {"fields": 1}
            big = c.post("/notes", json={"a": "b" * 70000})
            assert big.status_code == 413, big.text
            assert big.headers["content-type"] == "application/problem+json"
            assert c.post("/avatars", content=b"x" * 3_000_000).json() == {"bytes": 3_000_000}
            assert c.put("/backups", content=b"x" * 25_000_000).json() == {"bytes": 25_000_000}
    """,
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_runs(name: str) -> None:
    code = "from fastapi.testclient import TestClient\n" + textwrap.dedent(CHECKS[name])
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr
