"""auth_router(): token (OAuth2 password form), refresh with reuse detection, logout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_chassis import (
    ChassisSettings,
    CurrentPrincipal,
    PasswordHasher,
    TooManyRequests,
    auth_router,
    build_app,
    get_password_hasher,
)
from tests.auth.conftest import CHEAP_ARGON2, auth_settings


@dataclass
class User:
    id: int
    username: str
    password_hash: str
    scopes: list[str] = field(default_factory=list)


class Directory:
    """An in-memory user table whose `authenticate` follows the documented recipe."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self.users: dict[str, User] = {}
        self.calls = 0

    def add(
        self, username: str, password: str, scopes: list[str], stored: str | None = None
    ) -> None:
        stored = stored if stored is not None else self.hasher.hash(password)
        self.users[username] = User(len(self.users) + 1, username, stored, scopes)

    async def authenticate(self, username: str, password: str) -> User | None:
        self.calls += 1
        user = self.users.get(username)
        ok = await self.hasher.averify(user.password_hash if user else None, password)
        return user if ok else None


def make(**auth: Any) -> tuple[FastAPI, Directory]:
    app = build_app(ChassisSettings(auth=auth_settings(**auth)))
    directory = Directory(get_password_hasher(app))
    directory.add("alice", "s3cret-pw", ["notes:read", "notes:write"])
    directory.add("broken", "whatever", [], stored="$argon2id$v=19$corrupt")
    app.include_router(
        auth_router(directory.authenticate, scope_descriptions={"notes:read": "Read notes"})
    )

    @app.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"sub": principal.subject, "scopes": sorted(principal.scopes)}

    return app, directory


@pytest.fixture
def setup() -> Iterator[tuple[TestClient, Directory]]:
    app, directory = make(refresh_tokens=True)
    with TestClient(app) as client:
        yield client, directory


def login(
    client: TestClient,
    username: str = "alice",
    password: str = "s3cret-pw",  # noqa: S107
    **form: str,
) -> httpx.Response:
    return client.post("/auth/token", data={"username": username, "password": password, **form})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_returns_a_bearer_token_pair_not_to_be_cached(
    setup: tuple[TestClient, Directory],
) -> None:
    client, _ = setup
    response = login(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "notes:read notes:write"
    assert body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"
    me = client.get("/whoami", headers=auth(body["access_token"])).json()
    assert me == {"sub": "1", "scopes": ["notes:read", "notes:write"]}


def test_requested_scope_with_extra_spaces_narrows_the_grant(
    setup: tuple[TestClient, Directory],
) -> None:
    client, _ = setup
    body = login(client, scope="   notes:read    admin  ").json()
    assert body["scope"] == "notes:read"
    assert client.get("/whoami", headers=auth(body["access_token"])).json()["scopes"] == [
        "notes:read"
    ]


def test_unknown_user_and_wrong_password_get_identical_answers(
    setup: tuple[TestClient, Directory],
) -> None:
    client, _ = setup
    wrong = login(client, password="wrong-pw")
    unknown = login(client, username="mallory", password="wrong-pw")
    assert wrong.status_code == unknown.status_code == 401
    # Only the per-request id may differ between the two answers.
    assert {**wrong.json(), "request_id": None} == {**unknown.json(), "request_id": None}
    assert {**wrong.headers, "x-request-id": ""} == {**unknown.headers, "x-request-id": ""}
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert wrong.json()["code"] == "invalid_credentials"


def test_wrong_password_against_a_malformed_stored_hash_is_401_not_500(
    setup: tuple[TestClient, Directory],
) -> None:
    client, _ = setup
    assert login(client, username="broken", password="whatever").status_code == 401


def test_too_long_password_is_422_before_authenticate_runs(
    setup: tuple[TestClient, Directory],
) -> None:
    client, directory = setup
    response = login(client, password="p" * 1025)
    assert response.status_code == 422
    assert response.json()["code"] == "password_too_long"
    assert "p" * 100 not in response.text
    assert directory.calls == 0


def test_refresh_rotates_and_reuse_revokes_the_whole_session(
    setup: tuple[TestClient, Directory],
) -> None:
    client, _ = setup
    first = login(client).json()
    second = client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["scope"] == "notes:read notes:write"
    assert second.headers["cache-control"] == "no-store"
    assert client.get("/whoami", headers=auth(rotated["access_token"])).status_code == 200

    reuse = client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert "reused" in reuse.json()["detail"]
    # Every token of that login is now dead: the rotated pair and the first access token.
    for token in (rotated["access_token"], first["access_token"]):
        assert client.get("/whoami", headers=auth(token)).json()["detail"] == "token revoked"
    assert (
        client.post("/auth/refresh", data={"refresh_token": rotated["refresh_token"]}).status_code
        == 401
    )
    # Another login is a different family and unaffected.
    other = login(client).json()
    assert client.get("/whoami", headers=auth(other["access_token"])).status_code == 200


def test_an_access_token_cannot_be_used_to_refresh(setup: tuple[TestClient, Directory]) -> None:
    client, _ = setup
    access = login(client).json()["access_token"]
    response = client.post("/auth/refresh", data={"refresh_token": access})
    assert response.status_code == 401
    assert response.json()["detail"] == "not a refresh token"


def test_refresh_is_refused_while_refresh_tokens_are_off() -> None:
    app, _ = make()
    with TestClient(app) as client:
        body = login(client).json()
        assert "refresh_token" not in body
        response = client.post("/auth/refresh", data={"refresh_token": "a.b.c"})
        assert response.status_code == 401
        assert response.json()["detail"] == "refresh tokens are disabled"


def test_logout_revokes_the_presented_token_and_its_session(
    setup: tuple[TestClient, Directory],
) -> None:
    client, _ = setup
    pair = login(client).json()
    assert client.post("/auth/logout").status_code == 401
    assert client.post("/auth/logout", headers=auth(pair["access_token"])).status_code == 204
    assert client.get("/whoami", headers=auth(pair["access_token"])).status_code == 401
    assert (
        client.post("/auth/refresh", data={"refresh_token": pair["refresh_token"]}).status_code
        == 401
    )


def test_router_dependencies_are_the_rate_limit_hook() -> None:
    app = build_app(ChassisSettings(auth=auth_settings()))
    seen: list[str] = []

    def limited() -> None:
        seen.append("x")
        if len(seen) > 2:
            raise TooManyRequests("slow down", headers={"Retry-After": "60"})

    app.include_router(auth_router(lambda u, p: None, dependencies=[Depends(limited)]))
    with TestClient(app) as client:
        assert [login(client).status_code for _ in range(3)] == [401, 401, 429]


def test_openapi_password_flow_points_at_the_router_with_its_scopes() -> None:
    app = build_app(ChassisSettings(auth=auth_settings()))
    app.include_router(
        auth_router(lambda u, p: None, prefix="/api/auth", scope_descriptions={"a": "Scope A"})
    )

    @app.get("/b")
    async def b(principal: CurrentPrincipal) -> None:
        return None

    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["OAuth2"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["password"] == {"tokenUrl": "api/auth/token", "scopes": {"a": "Scope A"}}
    token_operation = schema["paths"]["/api/auth/token"]["post"]
    assert not [key for key in token_operation if key.startswith("x-chassis")]
    form = token_operation["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in form
    assert schema["paths"]["/api/auth/logout"]["post"]["security"] == [{"OAuth2": []}]


def test_subject_and_claims_hooks() -> None:
    app = build_app(ChassisSettings(auth=auth_settings()))
    app.include_router(
        auth_router(
            lambda u, p: {"name": u, "roles": ["r"]},
            subject=lambda user: f"user:{user['name']}",
            scopes=lambda user: ["x"],
            claims=lambda user: {"roles": user["roles"]},
        )
    )

    @app.get("/claims")
    async def claims(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"sub": principal.subject, "roles": principal.claims["roles"]}

    with TestClient(app) as client:
        token = login(client, username="zed").json()["access_token"]
        assert client.get("/claims", headers=auth(token)).json() == {
            "sub": "user:zed",
            "roles": ["r"],
        }


class GatedHasher(PasswordHasher):
    """Hashing waits at a gate, so the test controls when the logins may finish."""

    def __init__(self) -> None:
        super().__init__(
            time_cost=CHEAP_ARGON2["argon2_time_cost"],
            memory_cost=CHEAP_ARGON2["argon2_memory_cost"],
            parallelism=1,
            max_concurrency=4,
        )
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.in_progress = 0
        self.peak = 0

    def verify(self, stored_hash: str | None, password: str) -> bool:
        with self.lock:
            self.in_progress += 1
            self.peak = max(self.peak, self.in_progress)
        try:
            if not self.gate.wait(timeout=30):
                raise AssertionError("gate never opened")
            return super().verify(stored_hash, password)
        finally:
            with self.lock:
                self.in_progress -= 1


@pytest.mark.anyio
async def test_trivial_requests_complete_while_twenty_logins_are_hashing() -> None:
    app = build_app(ChassisSettings(auth=auth_settings()))
    hasher = GatedHasher()
    directory = Directory(hasher)
    directory.add("alice", "s3cret-pw", [])
    app.include_router(auth_router(directory.authenticate))

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    statuses: list[int] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def one_login() -> None:
            response = await client.post(
                "/auth/token", data={"username": "alice", "password": "s3cret-pw"}
            )
            statuses.append(response.status_code)

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(one_login)
            with anyio.fail_after(10):
                # Worker threads update the counter; polling it is the simplest cross-thread wait.
                while hasher.in_progress < 4:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            for _ in range(5):
                assert (await client.get("/ping")).json() == {"pong": True}
            # The pings were answered while every login was still hashing.
            assert statuses == []
            assert hasher.in_progress == 4
            hasher.gate.set()
    assert statuses == [200] * 20
    assert hasher.peak == 4, "the concurrency cap held"


def test_the_form_swagger_ui_sends_is_accepted(setup: tuple[TestClient, Directory]) -> None:
    client, _ = setup
    # Swagger UI's password flow: grant_type, the selected scopes, client credentials in Basic.
    response = client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": "s3cret-pw",
            "scope": "notes:write",
        },
        headers={"Authorization": "Basic c3dhZ2dlcjo="},
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "notes:write"
    assert login(client, grant_type="client_credentials").status_code == 422
