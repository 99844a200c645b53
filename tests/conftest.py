"""Shared fixtures. Redis tests use the real server; see `redis_url`."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

REDIS_URL = os.environ.get("CHASSIS_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REQUIRE_REDIS = os.environ.get("CHASSIS_TEST_REQUIRE_REDIS", "") not in ("", "0", "false")


def _redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`@pytest.mark.anyio`) run on asyncio."""
    return "asyncio"


class FakeClock:
    """A monotonic clock a test moves by hand (`clock.now += 60`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def redis_base_url() -> str:
    """`redis://host:port` of the test server; skips (or fails in CI) when it is not running."""
    if not _redis_answers(REDIS_URL):
        message = (
            f"Redis is not answering at {REDIS_URL} "
            "(start redis-server or set CHASSIS_TEST_REDIS_URL)"
        )
        if REQUIRE_REDIS:
            pytest.fail(message + "; CHASSIS_TEST_REQUIRE_REDIS is set, so this is a failure")
        pytest.skip(message)
    return REDIS_URL.rstrip("/")


@pytest.fixture
def redis_db_url(redis_base_url: str) -> Callable[[int], str]:
    """Build the URL of a dedicated database number; each test area uses its own number."""

    def build(db: int) -> str:
        return f"{redis_base_url}/{db}"

    return build


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child Pythons: this checkout's `src` first, so an uninstalled tree works."""
    env = dict(os.environ)
    paths = [os.path.join(ROOT, "src"), ROOT]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env
