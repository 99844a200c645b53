"""Readiness follows Redis down and back, and SIGTERM drains: the demo under uvicorn workers."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import (
    REDIS_DB,
    assert_decorated,
    free_port,
    run_demo,
    worker_clients,
    worker_of,
)

DEADLINE = 10.0  # seconds any awaited state change may take before the test fails


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class TcpProxy:
    """A loopback TCP relay to Redis that the test can take down and bring back on one port.

    Stopping it closes the listener and every relayed connection, which is what a Redis outage
    looks like from the workers; the real server (and everyone else's databases) stays up.
    """

    def __init__(self, target: tuple[str, int], port: int) -> None:
        self.target = target
        self.port = port
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._down = threading.Event()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)  # accept() wakes up to notice stop(); close() alone does not
        self._listener = listener
        self._down = threading.Event()
        self._spawn(self._accept, listener, self._down)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            self._down.set()
            self._threads[0].join(5)  # the accept loop: no connection is relayed after this
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(5)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket, down: threading.Event) -> None:
        while not down.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_readiness_follows_redis_down_and_back_on_every_worker(
    redis_base_url: str, demo_env: dict[str, str], tmp_path: Path
) -> None:
    real = urlsplit(redis_base_url)
    proxy = TcpProxy((real.hostname or "127.0.0.1", real.port or 6379), free_port())
    env = {
        **demo_env,
        "CHASSIS_REDIS__URL": f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}",
        "CHASSIS_RATE_LIMIT__FAIL_OPEN": "false",
    }
    with contextlib.ExitStack() as stack:
        proxy.start()
        stack.callback(proxy.stop)
        server = stack.enter_context(run_demo(env, str(tmp_path)))
        workers = worker_clients(server.base_url)
        for client in workers:
            stack.callback(client.close)
            assert client.get("/readyz").status_code == 200
            assert client.get("/limited").status_code == 200

        proxy.stop()  # Redis unreachable from here on
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
            assert limited.status_code == 503
            assert limited.json()["code"] == "rate_limit_unavailable"
            assert_decorated([down, limited])
            assert client.get("/healthz").status_code == 200  # liveness stays up

        proxy.start()  # Redis back on the same address
        for client in workers:
            wait_for(
                lambda c=client: c.get("/readyz").status_code == 200,
                f"worker {worker_of(client)} ready again",
            )
            assert client.get("/limited").status_code == 200


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
