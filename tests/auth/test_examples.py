"""The auth examples the docs include run as written."""

from __future__ import annotations

import asyncio
import runpy
from pathlib import Path

from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]


def test_passwords_example_runs() -> None:
    runpy.run_path(str(ROOT / "examples" / "passwords_alone.py"))


def test_tokens_example_runs() -> None:
    namespace = runpy.run_path(str(ROOT / "examples" / "tokens_alone.py"))
    asyncio.run(namespace["main"]())


def test_auth_service_example_logs_in_and_guards_scopes() -> None:
    from examples import auth_service

    auth_service.add_user("alice", "correct horse", ["notes:write"])
    with TestClient(auth_service.app) as client:
        assert client.get("/me").status_code == 401
        pair = client.post(
            "/auth/token", data={"username": "alice", "password": "correct horse"}
        ).json()
        headers = {"Authorization": f"Bearer {pair['access_token']}"}
        assert client.get("/me", headers=headers).json() == {"username": "alice"}
        assert client.post("/notes", headers=headers).json() == {"author": "alice"}
        assert pair["refresh_token"]


def test_testing_example_passes() -> None:
    from examples import testing_auth

    testing_auth.test_me_with_a_real_token()
    testing_auth.test_scopes_without_minting_tokens()
