"""The demo service's auth flow: register, log in, call protected and scoped routes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fastapi_chassis import ChassisSettings
from fastapi_chassis.demo import create_app
from tests.auth.conftest import auth_settings


def test_register_login_and_protected_routes() -> None:
    app = create_app(ChassisSettings(service_name="demo", auth=auth_settings(refresh_tokens=True)))
    with TestClient(app) as client:
        created = client.post("/users", json={"username": "alice", "password": "correct horse"})
        assert created.status_code == 201, created.text
        assert created.json() == {"username": "alice", "scopes": ["notes:read", "notes:write"]}
        duplicate = client.post("/users", json={"username": "alice", "password": "other pass"})
        assert duplicate.status_code == 409

        assert client.get("/me").status_code == 401
        wrong = client.post("/auth/token", data={"username": "alice", "password": "nope-nope"})
        assert wrong.status_code == 401
        pair = client.post(
            "/auth/token", data={"username": "alice", "password": "correct horse"}
        ).json()
        headers = {"Authorization": f"Bearer {pair['access_token']}"}
        assert client.get("/me", headers=headers).json()["username"] == "alice"
        note = client.post("/notes", headers=headers, json={"title": "first"})
        assert note.status_code == 201, note.text
        assert note.json()["owner"] == "alice"
        forbidden = client.get("/admin/stats", headers=headers)
        assert forbidden.status_code == 403
        assert forbidden.json()["missing_scopes"] == ["admin"]

        read_only = client.post(
            "/auth/token",
            data={"username": "alice", "password": "correct horse", "scope": "notes:read"},
        ).json()
        narrow = {"Authorization": f"Bearer {read_only['access_token']}"}
        assert client.post("/notes", headers=narrow, json={"title": "second"}).status_code == 403

        rotated = client.post("/auth/refresh", data={"refresh_token": pair["refresh_token"]})
        assert rotated.status_code == 200
        assert client.post("/auth/logout", headers=headers).status_code == 204
        assert client.get("/me", headers=headers).status_code == 401

        scheme = client.get("/openapi.json").json()["components"]["securitySchemes"]["OAuth2"]
        assert scheme["flows"]["password"]["tokenUrl"] == "auth/token"
        assert scheme["flows"]["password"]["scopes"]["notes:write"] == "Write notes"
