"""What install() wires for auth: startup key errors, the JWKS route, a valid OpenAPI document."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from fastapi_chassis import (
    AuthSettings,
    ChassisSettings,
    ConfigurationError,
    CurrentPrincipal,
    OptionalPrincipal,
    build_app,
    get_token_service,
)
from fastapi_chassis._context import subject_var
from fastapi_chassis.demo import create_app
from fastapi_chassis.testing import mint_token
from tests.auth.conftest import auth_settings


def test_an_unusable_key_fails_at_startup_naming_the_apps_variable() -> None:
    class Settings(ChassisSettings):
        model_config = SettingsConfigDict(env_prefix="NOTES_")

    with pytest.raises(ConfigurationError, match="NOTES_AUTH__JWT_SECRET is 5 bytes"):
        build_app(Settings(auth=AuthSettings(jwt_secret=SecretStr("short"))))


def test_jwks_is_served_for_public_key_algorithms(keypairs: dict[str, tuple[str, str]]) -> None:
    private_pem, _ = keypairs["EdDSA"]
    app = build_app(
        ChassisSettings(auth=auth_settings(algorithm="EdDSA", private_key=SecretStr(private_pem)))
    )
    with TestClient(app) as client:
        response = client.get("/.well-known/jwks.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/jwk-set+json"
        assert response.headers["cache-control"] == "public, max-age=300"
        (jwk,) = response.json()["keys"]
        assert jwk["kty"] == "OKP"
        assert "d" not in jwk
        token = get_token_service(app).issue_access_token("alice")
        assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
        public = jwt.PyJWK(jwk).key
        assert jwt.decode(token, public, algorithms=["EdDSA"])["sub"] == "alice"


@pytest.mark.parametrize(
    "auth",
    [{}, {"algorithm": "ES256", "jwks_path": ""}],
    ids=["hmac", "disabled"],
)
def test_jwks_is_not_served_for_hmac_or_when_disabled(auth: dict[str, Any]) -> None:
    app = build_app(ChassisSettings(auth=auth_settings(**auth)))
    with TestClient(app) as client:
        assert client.get("/.well-known/jwks.json").status_code == 404


def test_the_demo_openapi_document_is_valid_and_declares_the_password_flow() -> None:
    app = create_app(ChassisSettings(service_name="demo", auth=auth_settings(refresh_tokens=True)))
    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
    OpenAPIV31SpecValidator(schema).validate()
    flow = schema["components"]["securitySchemes"]["OAuth2"]["flows"]["password"]
    assert flow["tokenUrl"] == "auth/token"
    assert set(flow["scopes"]) == {"notes:read", "notes:write", "admin"}
    assert schema["paths"]["/notes"]["post"]["security"] == [{"OAuth2": ["notes:write"]}]
    assert schema["paths"]["/me"]["get"]["security"] == [{"OAuth2": []}]
    assert "security" not in schema["paths"]["/users"]["post"]


def test_the_token_router_documents_its_errors_with_the_content_type_it_sends() -> None:
    app = create_app(ChassisSettings(service_name="demo", auth=auth_settings(refresh_tokens=True)))
    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
        wrong = client.post("/auth/token", data={"username": "nobody", "password": "wrong!"})
    documented = schema["paths"]["/auth/token"]["post"]["responses"]["401"]["content"]
    assert list(documented) == [wrong.headers["content-type"]] == ["application/problem+json"]
    for path, status in (("/auth/token", "422"), ("/auth/refresh", "401"), ("/auth/logout", "401")):
        content = schema["paths"][path]["post"]["responses"][status]["content"]
        assert list(content) == ["application/problem+json"], (path, status)


@pytest.mark.anyio
async def test_subject_does_not_leak_into_the_callers_context_or_later_requests() -> None:
    import httpx

    app = build_app(ChassisSettings(environment="test"))
    seen: list[str | None] = []

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"sub": principal.subject}

    @app.get("/public")
    async def public(principal: OptionalPrincipal) -> dict[str, bool]:
        seen.append(subject_var.get())
        return {"anonymous": principal is None}

    token = mint_token(app, "alice")
    # ASGITransport runs the app in the caller's task, where a leaked contextvar would stay.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        me_response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert me_response.json() == {"sub": "alice"}
        assert subject_var.get() is None
        assert (await client.get("/public")).json() == {"anonymous": True}
    assert seen == [None]


@pytest.mark.anyio
async def test_a_request_inside_another_starts_anonymous_and_restores_the_outer_subject() -> None:
    import httpx

    app = build_app(ChassisSettings(environment="test"))
    seen: list[str | None] = []

    @app.get("/public")
    async def public() -> dict[str, bool]:
        seen.append(subject_var.get())
        return {"ok": True}

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        seen.append(subject_var.get())
        return {"sub": principal.subject}

    token = mint_token(app, "bob")
    outer = subject_var.set("alice")  # as if this code ran inside alice's request
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/public")).status_code == 200
            assert subject_var.get() == "alice"
            auth = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/me", headers=auth)).json() == {"sub": "bob"}
            assert subject_var.get() == "alice"
    finally:
        subject_var.reset(outer)
    assert seen == [None, "bob"]
