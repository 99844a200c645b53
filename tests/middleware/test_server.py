"""The middleware behind a real server (uvicorn), over a real socket."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def exchange(base_url: str, raw: bytes, *, body_chunks: int = 0) -> tuple[bytes, bool]:
    """Send `raw`, then up to `body_chunks` x 64 KiB; return the response and whether the
    server closed the connection."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(raw)
        try:
            for _ in range(body_chunks):
                sock.sendall(b"x" * 65536)
        except OSError:
            pass  # the server answered and closed while we were still uploading
        data = b""
        closed = False
        try:
            while True:
                piece = sock.recv(65536)
                if not piece:
                    closed = True
                    break
                data += piece
        except (TimeoutError, ConnectionResetError):
            closed = data != b""
        return data, closed


def test_declared_50mb_upload_is_refused_without_reading_it_and_connection_closed(
    demo_server: str,
) -> None:
    head = b"POST /uploads HTTP/1.1\r\nHost: t\r\nContent-Length: 52428800\r\n\r\n"
    response, closed = exchange(demo_server, head)
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413 ")  # reason phrase varies by uvicorn release
    headers = rest.split(b"\r\n\r\n", 1)[0].lower()
    assert b"connection: close" in headers
    assert b"content-type: application/problem+json" in headers
    assert b"x-request-id: " in headers
    assert closed


def test_upload_within_its_route_limit_is_accepted_over_the_global_limit(
    demo_server: str,
) -> None:
    size = 2 * 1024 * 1024  # over the 1 MiB default, under the route's 8 MiB
    head = (
        f"POST /uploads HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    )
    response, _ = exchange(demo_server, head.encode(), body_chunks=size // 65536)
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert f'"bytes":{size}'.encode() in response


def test_chunked_upload_over_the_route_limit_gets_413(demo_server: str) -> None:
    head = b"POST /uploads HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    parts = urlsplit(demo_server)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for _ in range(200):  # 12.5 MiB, the route allows 8 MiB
                sock.sendall(chunk)
        except OSError:
            pass
        data = b""
        try:
            while piece := sock.recv(65536):
                data += piece
        except (TimeoutError, ConnectionResetError):
            pass
    assert data.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in data
