"""Two uvicorn workers sharing one Redis behave as one service: limits, revocation, headers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import (
    REDIS_DB,
    REQUEST_ID,
    SECURITY_HEADERS,
    Server,
    assert_decorated,
    base_env,
    run_demo,
    worker_clients,
    worker_of,
)


@pytest.fixture(scope="module")
def server(redis_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One two-worker demo for this module; each test uses its own routes and users."""
    with run_demo(
        base_env(f"{redis_base_url}/{REDIS_DB}"), str(tmp_path_factory.mktemp("e2e"))
    ) as s:
        yield s


@pytest.fixture(autouse=True)
def fresh_budgets(redis_base_url: str) -> None:
    """Every test starts with empty rate-limit budgets and no revocations (same server)."""
    base_env(f"{redis_base_url}/{REDIS_DB}")


@pytest.fixture
def workers(server: Server) -> Iterator[list[httpx.Client]]:
    clients = worker_clients(server.base_url)
    yield clients
    for client in clients:
        client.close()


def test_a_limit_admits_exactly_n_across_both_workers(workers: list[httpx.Client]) -> None:
    first, second = workers
    assert worker_of(first) != worker_of(second)
    answers = [(first if i % 2 == 0 else second).get("/limited") for i in range(12)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 7
    # The budget is one: each worker saw its neighbour's hits in the remaining count.
    assert [a.headers["RateLimit"] for a in answers[:5]] == [
        f'"/limited";r={left};t=60' for left in (4, 3, 2, 1, 0)
    ]
    rejected = answers[5]
    assert rejected.headers["content-type"] == "application/problem+json"
    assert int(rejected.headers["Retry-After"]) > 0
    assert_decorated(answers)


def test_concurrent_logins_admit_exactly_the_login_limit(server: Server) -> None:
    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=10) as c:
            form = {"username": "nobody", "password": "not the password"}
            answers = await asyncio.gather(*(c.post("/auth/token", data=form) for _ in range(30)))
        return [a.status_code for a in answers]

    statuses = asyncio.run(burst())
    assert sorted(statuses) == [401] * 10 + [429] * 20


def test_a_token_revoked_through_one_worker_is_refused_by_the_other(
    workers: list[httpx.Client],
) -> None:
    first, second = workers
    registered = first.post("/users", json={"username": "revoke-me", "password": "correct horse"})
    assert registered.status_code == 201, registered.text
    # Same connection, same worker: the user exists only in that worker's memory.
    pair = first.post("/auth/token", data={"username": "revoke-me", "password": "correct horse"})
    assert pair.status_code == 200, pair.text
    bearer = {"Authorization": f"Bearer {pair.json()['access_token']}"}
    seen = {first.get("/whoami", headers=bearer).json()["worker"]}
    seen.add(second.get("/whoami", headers=bearer).json()["worker"])
    assert len(seen) == 2  # both workers accept the token (one shared secret)

    assert first.post("/auth/logout", headers=bearer).status_code == 204
    refused = second.get("/whoami", headers=bearer)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert first.get("/whoami", headers=bearer).status_code == 401
    # Logout revoked the whole login: its refresh token is dead on the other worker too.
    refresh = second.post("/auth/refresh", data={"refresh_token": pair.json()["refresh_token"]})
    assert refresh.status_code == 401


def test_every_response_carries_a_request_id_and_the_security_headers(
    workers: list[httpx.Client],
) -> None:
    for client in workers:
        answers = [
            client.get("/"),
            client.get("/healthz"),
            client.get("/readyz"),
            client.get("/metrics"),
            client.get("/openapi.json"),
            client.get("/docs"),
            client.get("/items/3"),
            client.get("/items/99"),  # 404 domain error
            client.get("/nowhere"),  # 404 unknown route
            client.delete("/items/3"),  # 405
            client.get("/catalog", params={"size": 0}),  # 422
            client.get("/catalog/feed", params={"cursor": "tampered"}),  # 400
            client.get("/notes"),  # 401
        ]
        assert {a.status_code for a in answers} >= {200, 400, 401, 404, 405, 422}
        assert_decorated(answers)
        ids = [a.headers["X-Request-ID"] for a in answers]
        assert len(set(ids)) == len(ids)
        echoed = client.get("/", headers={"X-Request-ID": "client-chosen.id-1"})
        assert echoed.headers["X-Request-ID"] == "client-chosen.id-1"


def test_a_refused_upload_carries_them_too(server: Server) -> None:
    # Declared over the 1 MiB limit and never sent: refused before the body is read (a client
    # library would still be uploading when the server answers and closes).
    head = b"POST /users HTTP/1.1\r\nHost: e2e\r\nContent-Length: 2097152\r\n\r\n"
    parts = urlsplit(server.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        raw = b""
        while b"\r\n\r\n" not in raw:
            piece = sock.recv(65536)
            assert piece, raw
            raw += piece
    status_line, *lines = raw.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    assert status_line.split()[1] == "413"
    assert headers["content-type"] == "application/problem+json"
    assert REQUEST_ID.fullmatch(headers["x-request-id"])
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
