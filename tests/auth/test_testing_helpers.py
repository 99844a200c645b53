"""fastapi_chassis.testing: mint tokens for an app; override the user without tokens."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_chassis import (
    ChassisSettings,
    CurrentPrincipal,
    CurrentUser,
    OptionalUser,
    build_app,
    require_scopes,
)
from fastapi_chassis.testing import auth_headers, mint_token, override_user
from tests.auth.conftest import auth_settings


@dataclass
class Member:
    id: int
    name: str


def make_app() -> FastAPI:
    app = build_app(
        ChassisSettings(auth=auth_settings()),
        user_loader=lambda principal: Member(int(principal.subject), "from-loader"),
    )

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"name": user.name}

    @app.get("/maybe")
    async def maybe(user: OptionalUser) -> dict[str, str | None]:
        return {"name": None if user is None else user.name}

    @app.get("/scoped", dependencies=[require_scopes("admin")])
    async def scoped(principal: CurrentPrincipal) -> dict[str, str]:
        return {"subject": principal.subject}

    return app


def test_minted_tokens_pass_the_real_verification() -> None:
    app = make_app()
    with TestClient(app) as client:
        token = mint_token(app, "7", ["admin"])
        assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).json() == {
            "name": "from-loader"
        }
        assert client.get("/scoped", headers=auth_headers(app, "7", ["admin"])).json() == {
            "subject": "7"
        }
        assert client.get("/scoped", headers=auth_headers(app, "7")).status_code == 403


def test_override_user_skips_tokens_and_restores_overrides_on_exit() -> None:
    app = make_app()
    alice = Member(1, "alice")
    with TestClient(app) as client:
        with override_user(app, alice, scopes=["admin"]) as principal:
            assert principal.subject == "1"
            assert client.get("/me").json() == {"name": "alice"}
            assert client.get("/maybe").json() == {"name": "alice"}
            assert client.get("/scoped").json() == {"subject": "1"}
        with override_user(app, alice):
            assert client.get("/scoped").status_code == 403
        assert client.get("/me").status_code == 401
        assert client.get("/maybe").json() == {"name": None}
        assert app.dependency_overrides == {}
