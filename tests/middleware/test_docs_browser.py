"""The docs pages in a real browser (headless Chromium) under the chassis' own CSP."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.request

import pytest

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
REQUIRE = os.environ.get("CHASSIS_TEST_REQUIRE_CHROMIUM", "") not in ("", "0", "false")
# ReDoc 2 always shows a "Redocly" logo from its vendor's CDN; the docs CSP blocks that one image.
KNOWN_BLOCKED = "cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        message = "headless Chromium not found (Debian: apt-get install chromium; .ci/run does)"
        if REQUIRE:
            pytest.fail(message + "; CHASSIS_TEST_REQUIRE_CHROMIUM is set, so this is a failure")
        pytest.skip(message)
    # Without console capture the "no violation" assertions below would pass vacuously.
    _, console = render(CHROMIUM, "data:text/html,<script>console.log('chassis-canary')</script>")
    assert any("chassis-canary" in line for line in console), "Chromium console not captured"
    return CHROMIUM


def render(chromium: str, url: str, budget_ms: int = 15000) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and the console messages, of `url` in a fresh profile."""
    with tempfile.TemporaryDirectory(prefix="chassis-chromium-") as profile:
        result = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result.stdout, console


def csp_violations(console: list[str]) -> list[str]:
    return [
        line for line in console if "Content Security Policy" in line and KNOWN_BLOCKED not in line
    ]


def render_until(chromium: str, url: str, marker: str) -> tuple[str, list[str]]:
    dom, console = render(chromium, url)
    if marker not in dom:  # a slow machine: give the page more (virtual) time once
        dom, console = render(chromium, url, budget_ms=45000)
    return dom, console


def test_docs_csp_allows_only_the_service_itself(demo_server: str) -> None:
    with urllib.request.urlopen(demo_server + "/docs", timeout=10) as response:  # noqa: S310
        csp = response.headers["content-security-policy"]
        assert response.headers["x-request-id"]
    assert "http" not in csp
    assert "script-src 'self' 'sha256-" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


def test_swagger_ui_renders_operations_with_no_csp_violation(
    chromium: str, demo_server: str
) -> None:
    dom, console = render_until(chromium, demo_server + "/docs", 'data-path="/items/{item_id}"')
    assert 'data-path="/items/{item_id}"' in dom, console
    assert 'data-path="/uploads"' in dom
    assert csp_violations(console) == []


def test_redoc_renders_operations_with_no_csp_violation_but_the_vendor_logo(
    chromium: str, demo_server: str
) -> None:
    dom, console = render_until(chromium, demo_server + "/redoc", "/items/{item_id}")
    assert "/items/{item_id}" in dom, console
    assert "Get Item" in dom
    assert csp_violations(console) == []
