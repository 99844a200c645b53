"""Run the demo service under real uvicorn workers, as users run it.

Each server is a process group started on a free loopback port and stopped by PID (SIGTERM,
then SIGKILL after a bound), so no test leaves a server or a port behind.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import subprocess_env

REDIS_DB = 5  # the end-to-end tests' dedicated database
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
E2E_SECRET = "e2e-Zx8-q2Lr7vNn4TtYp0aWc3Kd9Ue6Fh1JbGm5Si2Oo8Rl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: str

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM the server (uvicorn drains), then SIGKILL the group past `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return int(self.process.returncode)


@contextmanager
def run_demo(env: dict[str, str], tmp_dir: str, *, workers: int = 2) -> Iterator[Server]:
    port = free_port()
    log_path = os.path.join(tmp_dir, f"uvicorn-{port}.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "fastapi_chassis.demo:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-server-header",
                "--timeout-graceful-shutdown",
                "10",
                # Tests pin a worker by reusing one connection; keep idle ones open meanwhile.
                "--timeout-keep-alive",
                "30",
            ],
            env=subprocess_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_ready(server, workers)
        yield server
    finally:
        server.terminate()
        if process.poll() is None:  # pragma: no cover - last resort
            os.killpg(process.pid, signal.SIGKILL)


def worker_clients(base_url: str, *, workers: int = 2, attempts: int = 60) -> list[httpx.Client]:
    """One client per worker, each pinned to it by a single kept-alive connection.

    New connections go to whichever worker accepts first; open them until every worker has
    answered `/` (which names its process) and keep one client per worker.
    """
    pinned: dict[int, httpx.Client] = {}
    try:
        for _ in range(attempts):
            client = httpx.Client(
                base_url=base_url,
                timeout=10.0,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            worker = int(client.get("/").json()["worker"])
            if worker in pinned:
                client.close()
            else:
                pinned[worker] = client
            if len(pinned) == workers:
                return list(pinned.values())
    except BaseException:
        for client in pinned.values():
            client.close()
        raise
    for client in pinned.values():
        client.close()
    raise AssertionError(f"only workers {sorted(pinned)} answered in {attempts} connections")


def worker_of(client: httpx.Client) -> int:
    """The process serving `client`'s pinned connection."""
    return int(client.get("/").json()["worker"])


def _wait_ready(server: Server, workers: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"demo exited early:\n{server.log()}")
        # Every worker logs its own startup; wait for all so both serve the first requests.
        if server.log().count("Application startup complete") >= workers:
            try:
                httpx.get(server.base_url + "/healthz", timeout=1.0)
                return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"demo did not start within {STARTUP_TIMEOUT}s:\n{server.log()}")


@pytest.fixture
def demo_env(redis_db_url: Callable[[int], str]) -> dict[str, str]:
    """Settings for a demo shared through the real Redis, as two workers would run it."""
    return base_env(redis_db_url(REDIS_DB))


def base_env(redis_url: str) -> dict[str, str]:
    """Demo settings sharing state through `redis_url`, after flushing that database."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return {
        "CHASSIS_SERVICE_NAME": "chassis-demo-e2e",
        "CHASSIS_ENVIRONMENT": "test",
        "CHASSIS_REDIS__URL": redis_url,
        # These tests check what is shared, not timeouts: on a loaded 2-core CI machine the
        # 0.25 s default could turn a slow Redis answer into a fail-open admission.
        "CHASSIS_REDIS__SOCKET_TIMEOUT": "2.0",
        "CHASSIS_REDIS__CONNECT_TIMEOUT": "2.0",
        "CHASSIS_AUTH__JWT_SECRET": E2E_SECRET,
        "CHASSIS_LOGGING__LEVEL": "WARNING",
        # Cheapest argon2id: the tests exercise behaviour, not hashing cost.
        "CHASSIS_AUTH__ARGON2_TIME_COST": "1",
        "CHASSIS_AUTH__ARGON2_MEMORY_COST": "8",
        "CHASSIS_AUTH__ARGON2_PARALLELISM": "1",
    }


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def assert_decorated(answers: list[httpx.Response]) -> None:
    """A request id (the body's too, on errors) and the security headers on every answer."""
    for answer in answers:
        assert REQUEST_ID.fullmatch(answer.headers["X-Request-ID"]), answer.request.url
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value, (answer.request.url, name)
        assert answer.headers["Content-Security-Policy"]
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["request_id"] == answer.headers["X-Request-ID"]
