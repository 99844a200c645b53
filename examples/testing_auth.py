"""Testing an app with logins: real tokens, or an overridden user without any."""

from __future__ import annotations

from fastapi.testclient import TestClient

from examples.auth_service import USERS, User, app
from fastapi_chassis.testing import auth_headers, override_user


def test_me_with_a_real_token() -> None:
    USERS["ada"] = User(id=7, username="ada", password_hash="unused")
    with TestClient(app) as client:
        response = client.get("/me", headers=auth_headers(app, "7", ["notes:write"]))
        assert response.json() == {"username": "ada"}


def test_scopes_without_minting_tokens() -> None:
    grace = User(id=8, username="grace", password_hash="unused")
    with TestClient(app) as client:
        with override_user(app, grace, scopes=["notes:write"]):
            assert client.post("/notes").json() == {"author": "grace"}
        with override_user(app, grace):  # no scope: 403
            assert client.post("/notes").status_code == 403
