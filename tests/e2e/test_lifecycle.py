"""Readiness follows Redis, and SIGTERM drains: the demo's lifecycle under uvicorn workers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import REDIS_DB, free_port, run_demo, worker_clients, worker_of

DEADLINE = 10.0  # seconds any awaited state change may take before the test fails


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def throwaway_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A private redis-server on `port` (no persistence), stopped by PID."""
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _pong(port), f"redis-server on port {port}")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)


@pytest.fixture
def redis_server_binary() -> None:
    if subprocess.run(["which", "redis-server"], capture_output=True, check=False).returncode:
        message = "redis-server is not installed (needed to stop and restart a private Redis)"
        if os.environ.get("CHASSIS_TEST_REQUIRE_REDIS"):
            pytest.fail(message)
        pytest.skip(message)


def test_readiness_follows_redis_down_and_back_on_every_worker(
    redis_server_binary: None, demo_env: dict[str, str], tmp_path: Path
) -> None:
    redis_port = free_port()
    env = {
        **demo_env,
        "CHASSIS_REDIS__URL": f"redis://127.0.0.1:{redis_port}/{REDIS_DB}",
        "CHASSIS_RATE_LIMIT__FAIL_OPEN": "false",
    }
    with throwaway_redis(redis_port) as redis_process, run_demo(env, str(tmp_path)) as server:
        workers = worker_clients(server.base_url)
        try:
            for client in workers:
                assert client.get("/readyz").status_code == 200
                assert client.get("/limited").status_code == 200

            redis_process.kill()
            redis_process.wait(5)
            for client in workers:
                down = client.get("/readyz")
                assert down.status_code == 503
                assert down.headers["content-type"] == "application/problem+json"
                body = down.json()
                assert body["code"] == "not_ready"
                assert body["checks"]["redis"]["status"] == "failed"
                assert body["checks"]["storage"]["status"] == "ok"
                # Fail-closed limits answer 503 too, instead of letting requests through.
                limited = client.get("/limited")
                assert (limited.status_code, limited.json()["code"]) == (
                    503,
                    "rate_limit_unavailable",
                )
                assert client.get("/healthz").status_code == 200  # liveness stays up

            with throwaway_redis(redis_port):
                for client in workers:
                    wait_for(
                        lambda c=client: c.get("/readyz").status_code == 200,
                        f"worker {worker_of(client)} ready again",
                    )
                    assert client.get("/limited").status_code == 200
        finally:
            for client in workers:
                client.close()


def _in_flight(base_url: str) -> bool:
    """Whether the worker a new connection reaches is serving a request (its metrics say so)."""
    scrape = httpx.get(base_url + "/metrics", timeout=5).text
    found = re.search(r"^http_requests_inprogress ([0-9.]+)$", scrape, re.MULTILINE)
    return found is not None and float(found.group(1)) >= 1


def test_sigterm_turns_readiness_503_first_and_lets_the_slow_request_finish(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**demo_env, "CHASSIS_HEALTH__DRAIN_SECONDS": "1.5"}
    with run_demo(env, str(tmp_path)) as server, ThreadPoolExecutor(1) as pool:
        slow_client, other = worker_clients(server.base_url)
        other.close()
        slow = pool.submit(slow_client.get, "/slow", params={"seconds": 3})
        wait_for(lambda: _in_flight(server.base_url), "the slow request to be in flight")

        server.process.send_signal(signal.SIGTERM)
        unready: list[httpx.Response] = []

        def readiness_turned() -> bool:
            answer = httpx.get(server.base_url + "/readyz", timeout=5)
            if answer.status_code == 503:
                unready.append(answer)
                return True
            return False

        wait_for(readiness_turned, "readiness to turn 503")
        assert not slow.done()  # readiness said 503 while the request was still running
        assert unready[0].json()["draining"] is True
        assert unready[0].json()["code"] == "not_ready"

        finished = slow.result(timeout=DEADLINE)
        slow_client.close()
        assert finished.status_code == 200
        assert finished.json()["slept"] == 3
        assert server.process.wait(DEADLINE) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.base_url + "/healthz", timeout=2)
