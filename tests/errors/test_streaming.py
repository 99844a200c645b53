"""A failure half-way through a streamed body, through a real uvicorn server."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from tests.errors.conftest import REQUEST_ID

MakeApp = Callable[..., FastAPI]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` on uvicorn in a thread; uvicorn leaves logging alone (`log_config=None`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_failure_after_the_first_chunk_closes_the_connection_and_logs_once(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.get("/export")
    async def export() -> StreamingResponse:
        async def rows() -> AsyncIterator[bytes]:
            yield b"id,name\n"
            raise RuntimeError("upstream gone")

        return StreamingResponse(rows(), media_type="text/csv")

    caplog.set_level(logging.INFO)
    received: list[bytes] = []
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=5) as client:
        with client.stream("GET", "/export") as response:
            assert response.status_code == 200
            assert response.headers["x-request-id"] == REQUEST_ID
            # The body is cut short: the client sees a broken response, never a complete one.
            with pytest.raises(httpx.RemoteProtocolError):
                received.extend(response.iter_raw())
        # The server closed only that connection; the next request is served normally.
        assert client.get("/missing").status_code == 404

    assert b"".join(received) == b"id,name\n"
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.name == "fastapi_chassis.errors"
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert f"request_id={REQUEST_ID}" in record.getMessage()
    assert "the connection will be closed" in record.getMessage()
    # uvicorn notices the unfinished response (one line, no second traceback).
    assert any(r.name.startswith("uvicorn") and r.levelno == logging.ERROR for r in caplog.records)
