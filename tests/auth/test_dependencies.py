"""CurrentPrincipal / CurrentUser / OptionalUser / require_scopes over HTTP (RFC 6750)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.testclient import TestClient

from fastapi_chassis import (
    ChassisSettings,
    CurrentPrincipal,
    CurrentUser,
    OptionalPrincipal,
    OptionalUser,
    Principal,
    build_app,
    get_current_user,
    get_token_service,
    require_scopes,
)
from fastapi_chassis._context import subject_var
from fastapi_chassis.auth import get_current_principal
from tests.auth.conftest import auth_settings


@dataclass
class Account:
    name: str
    active: bool = True


ACCOUNTS = {"alice": Account("alice"), "gone": Account("gone", active=False)}

AccountUser = Annotated[Account, Depends(get_current_user)]
NoteWriter = Annotated[Principal, require_scopes("notes:write")]


def load_account(principal: Principal) -> Account | None:
    account = ACCOUNTS.get(principal.subject)
    return account if account is not None and account.active else None


def make_app(**auth: Any) -> FastAPI:
    app = build_app(ChassisSettings(auth=auth_settings(**auth)), user_loader=load_account)

    @app.get("/me")
    async def me(user: AccountUser) -> dict[str, str]:
        return {"name": user.name}

    @app.get("/maybe")
    async def maybe(user: OptionalUser) -> dict[str, str | None]:
        return {"name": user.name if user is not None else None}

    @app.get("/principal")
    async def principal(p: CurrentPrincipal, request: Request) -> dict[str, Any]:
        return {
            "subject": p.subject,
            "scopes": sorted(p.scopes),
            "state": request.state.principal.subject,
            "contextvar": subject_var.get(),
        }

    @app.post("/notes", dependencies=[require_scopes("notes:write")])
    async def write(user: CurrentUser) -> dict[str, str]:
        return {"by": user.name}

    @app.post("/alias")
    async def alias(writer: NoteWriter) -> dict[str, str]:
        return {"by": writer.subject}

    @app.delete("/everything", dependencies=[require_scopes("notes:write", "admin")])
    async def purge() -> dict[str, bool]:
        return {"purged": True}

    return app


@pytest.fixture
def app() -> FastAPI:
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def bearer(app: FastAPI, subject: str = "alice", scopes: tuple[str, ...] = ()) -> dict[str, str]:
    token = get_token_service(app).issue_access_token(subject, scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert response.json()["code"] == "invalid_token"


def test_valid_token_gives_the_loaded_user(app: FastAPI, client: TestClient) -> None:
    assert client.get("/me", headers=bearer(app)).json() == {"name": "alice"}


def test_missing_credentials_is_401_without_an_error_code(client: TestClient) -> None:
    response = client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearer garbage",
        "Bearer !!!.@@@.###",
        "Bearer a.b.c",
        "Bearer tok en.x.y",
        "bearer a.b",
    ],
)
def test_malformed_bearer_credentials_are_invalid_token(client: TestClient, header: str) -> None:
    assert_invalid_token(client.get("/me", headers={"Authorization": header}))


@pytest.mark.parametrize(
    "raw", ["Bearer t\xf6k\xe9n".encode("latin-1"), "Bearer ключ.ключ.ключ".encode()]
)
def test_non_ascii_authorization_is_invalid_token(client: TestClient, raw: bytes) -> None:
    assert_invalid_token(client.get("/me", headers=[(b"authorization", raw)]))


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "garbage", "Token abc"])
def test_other_schemes_count_as_no_credentials(client: TestClient, header: str) -> None:
    response = client.get("/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/maybe", headers={"Authorization": header}).json() == {"name": None}


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_scheme_name_is_case_insensitive(app: FastAPI, client: TestClient, scheme: str) -> None:
    token = bearer(app)["Authorization"].split(" ", 1)[1]
    response = client.get("/me", headers={"Authorization": f"{scheme} {token}"})
    assert response.json() == {"name": "alice"}


def test_a_one_megabyte_bearer_token_is_rejected(client: TestClient) -> None:
    response = client.get("/me", headers={"Authorization": "Bearer " + "a" * (1024 * 1024)})
    assert_invalid_token(response)
    assert "too large" in response.json()["detail"]


def test_expired_token_says_so(app: FastAPI, client: TestClient) -> None:
    token = get_token_service(app).issue_access_token("alice", ttl=-60)
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert_invalid_token(response)
    assert 'error_description="token expired"' in response.headers["www-authenticate"]


def test_revoked_token_is_rejected(app: FastAPI, client: TestClient) -> None:
    headers = bearer(app)
    assert client.get("/me", headers=headers).status_code == 200
    tokens = get_token_service(app)
    claims = tokens.decode(headers["Authorization"].split()[1])
    anyio.run(tokens.revoke_claims, claims)
    response = client.get("/me", headers=headers)
    assert_invalid_token(response)
    assert response.json()["detail"] == "token revoked"


def test_optional_user_is_none_without_credentials_and_401_with_bad_ones(
    app: FastAPI, client: TestClient
) -> None:
    assert client.get("/maybe").json() == {"name": None}
    assert client.get("/maybe", headers=bearer(app)).json() == {"name": "alice"}
    assert_invalid_token(client.get("/maybe", headers={"Authorization": "Bearer x.y.z"}))


def test_user_loader_returning_none_is_401(app: FastAPI, client: TestClient) -> None:
    assert_invalid_token(client.get("/me", headers=bearer(app, "gone")))
    assert_invalid_token(client.get("/maybe", headers=bearer(app, "nobody")))


def test_async_user_loader_and_no_loader() -> None:
    async def loader(principal: Principal) -> Account:
        return Account(principal.subject.upper())

    app = build_app(ChassisSettings(auth=auth_settings()), user_loader=loader)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"name": user.name}

    plain = build_app(ChassisSettings(auth=auth_settings()))

    @plain.get("/me")
    async def me_plain(user: CurrentUser) -> dict[str, Any]:
        assert isinstance(user, Principal)
        return {"subject": user.subject}

    with TestClient(app) as client, TestClient(plain) as plain_client:
        assert client.get("/me", headers=bearer(app, "bob")).json() == {"name": "BOB"}
        assert plain_client.get("/me", headers=bearer(plain, "bob")).json() == {"subject": "bob"}


def test_principal_is_on_request_state_and_in_the_subject_contextvar(
    app: FastAPI, client: TestClient
) -> None:
    body = client.get("/principal", headers=bearer(app, scopes=("b", "a"))).json()
    assert body == {
        "subject": "alice",
        "scopes": ["a", "b"],
        "state": "alice",
        "contextvar": "alice",
    }


def test_missing_scope_is_403_insufficient_scope_naming_it(
    app: FastAPI, client: TestClient
) -> None:
    response = client.delete("/everything", headers=bearer(app, scopes=("notes:write",)))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="notes:write admin"'
    )
    assert response.json()["code"] == "insufficient_scope"
    assert response.json()["missing_scopes"] == ["admin"]


def test_required_scopes_allow_when_granted(app: FastAPI, client: TestClient) -> None:
    writer = bearer(app, scopes=("notes:write",))
    assert client.post("/notes", headers=writer).json() == {"by": "alice"}
    assert client.post("/alias", headers=writer).json() == {"by": "alice"}
    assert client.post("/alias", headers=bearer(app)).status_code == 403
    assert client.post("/alias").status_code == 401


def test_token_is_verified_once_per_request(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = get_token_service(app)
    calls: list[str] = []
    original = tokens.verify

    async def counting(token: str, **kwargs: Any) -> dict[str, Any]:
        calls.append(token)
        return await original(token, **kwargs)

    monkeypatch.setattr(tokens, "verify", counting)
    assert client.post("/notes", headers=bearer(app, scopes=("notes:write",))).status_code == 200
    assert len(calls) == 1


def test_require_scopes_refuses_bad_declarations() -> None:
    with pytest.raises(ValueError, match="at least one"):
        require_scopes()
    with pytest.raises(ValueError, match="invalid scope"):
        require_scopes("has space")


def test_openapi_declares_http_bearer_without_the_token_router(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["OAuth2"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Bearer JWT access token.",
    }
    assert schema["paths"]["/me"]["get"]["security"] == [{"OAuth2": []}]
    # CurrentUser next to require_scopes reads as one requirement that needs the scopes.
    assert schema["paths"]["/notes"]["post"]["security"] == [{"OAuth2": ["notes:write"]}]
    (requirement,) = schema["paths"]["/everything"]["delete"]["security"]
    assert sorted(requirement["OAuth2"]) == ["admin", "notes:write"]


def test_websockets_authenticate_with_the_same_dependencies() -> None:
    app = make_app()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, user: OptionalUser) -> None:
        await websocket.accept()
        await websocket.send_json({"name": None if user is None else user.name})
        await websocket.close()

    with TestClient(app) as client:
        with client.websocket_connect("/ws", headers=bearer(app)) as socket:
            assert socket.receive_json() == {"name": "alice"}
        with client.websocket_connect("/ws") as socket:
            assert socket.receive_json() == {"name": None}


def test_outer_middleware_sees_the_subject_after_the_app_answers() -> None:
    seen: list[str | None] = []

    class RecordSubject:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)
            if scope["type"] == "http":
                seen.append(subject_var.get())

    app = make_app()
    app.add_middleware(RecordSubject)
    with TestClient(app) as client:
        client.get("/me", headers=bearer(app, "alice"))
        client.get("/maybe")
    assert seen == ["alice", None]


def test_principal_dependencies_declare_the_scheme_and_verify_once_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # CurrentPrincipal and OptionalPrincipal resolve the token themselves (one dependency
    # level each); on one route they still share a single verification.
    app = make_app()

    @app.get("/both")
    async def both(p: CurrentPrincipal, maybe: OptionalPrincipal) -> dict[str, Any]:
        return {"same": p is maybe, "subject": p.subject}

    tokens = get_token_service(app)
    calls: list[str] = []
    original = tokens.verify

    async def counting(token: str, **kwargs: Any) -> dict[str, Any]:
        calls.append(token)
        return await original(token, **kwargs)

    monkeypatch.setattr(tokens, "verify", counting)
    with TestClient(app) as client:
        assert client.get("/both", headers=bearer(app)).json() == {
            "same": True,
            "subject": "alice",
        }
        assert len(calls) == 1
        assert client.get("/both").status_code == 401
        schema = client.get("/openapi.json").json()
    assert schema["paths"]["/both"]["get"]["security"] == [{"OAuth2": []}]


def test_overriding_get_current_principal_reaches_current_user_and_scopes() -> None:
    app = make_app()
    app.dependency_overrides[get_current_principal] = lambda: Principal(
        subject="alice", scopes=frozenset({"notes:write"}), claims={"sub": "alice"}
    )
    with TestClient(app) as client:
        # No token sent: the override answers, and the user loader still runs for real.
        assert client.post("/notes").json() == {"by": "alice"}
        assert client.delete("/everything").status_code == 403


def test_bearer_credentials_come_from_the_first_authorization_header(
    app: FastAPI, client: TestClient
) -> None:
    good = bearer(app)["Authorization"].encode()
    headers = [(b"authorization", good), (b"authorization", b"Basic Zm9vOmJhcg==")]
    request = client.build_request("GET", "/me")
    request.headers = request.headers.__class__(headers)  # type: ignore[misc]
    assert client.send(request).json() == {"name": "alice"}
