"""Helpers for your own tests: mint real tokens, or skip tokens and override the user.

from fastapi_chassis.testing import auth_headers, override_user

def test_me(client):
    response = client.get("/me", headers=auth_headers(client.app, "alice", ["notes:read"]))

def test_me_without_tokens(client):
    with override_user(client.app, alice, scopes=["notes:read"]):
        response = client.get("/me")
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request

from fastapi_chassis._context import subject_var
from fastapi_chassis.auth._install import get_token_service
from fastapi_chassis.auth.dependencies import (
    get_current_principal,
    get_current_user,
    get_optional_principal,
    get_optional_user,
)
from fastapi_chassis.auth.principal import Principal, parse_scopes

__all__ = ["auth_headers", "mint_token", "override_user"]


def mint_token(
    app: FastAPI,
    subject: str,
    scopes: Iterable[str] = (),
    *,
    claims: Mapping[str, Any] | None = None,
    ttl: int | None = None,
) -> str:
    """A real access token for `subject`, signed with `app`'s keys."""
    return get_token_service(app).issue_access_token(subject, scopes=scopes, claims=claims, ttl=ttl)


def auth_headers(
    app: FastAPI,
    subject: str,
    scopes: Iterable[str] = (),
    *,
    claims: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """`{"Authorization": "Bearer <token>"}` with a token minted by `mint_token`."""
    return {"Authorization": f"Bearer {mint_token(app, subject, scopes, claims=claims)}"}


def _subject_of(user: Any) -> str:
    for attribute in ("subject", "id", "username"):
        value = getattr(user, attribute, None)
        if value is not None:
            return str(value)
    return str(user)


@contextmanager
def override_user(
    app: FastAPI,
    user: Any,
    *,
    scopes: Iterable[str] = (),
    subject: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> Iterator[Principal]:
    """Within the block, every request of `app` is authenticated as `user` with `scopes`.

    No token is minted or verified: `CurrentUser` and `OptionalUser` return `user`, and
    `CurrentPrincipal` / `require_scopes` see a principal with `subject` (default: the
    user's `subject`, `id` or `username`) and `scopes`. The previous overrides come back
    on exit.
    """
    granted = parse_scopes(scopes)
    sub = subject if subject is not None else _subject_of(user)
    principal = Principal(
        subject=sub,
        scopes=frozenset(granted),
        claims={**(claims or {}), "sub": sub, "scope": " ".join(granted)},
    )

    async def fake_principal(request: Request) -> Principal:
        request.state.principal = principal
        subject_var.set(principal.subject)
        return principal

    async def fake_user() -> Any:
        return user

    replaced = (get_current_principal, get_optional_principal, get_current_user, get_optional_user)
    saved = {
        dep: app.dependency_overrides[dep] for dep in replaced if dep in app.dependency_overrides
    }
    app.dependency_overrides[get_current_principal] = fake_principal
    app.dependency_overrides[get_optional_principal] = fake_principal
    app.dependency_overrides[get_current_user] = fake_user
    app.dependency_overrides[get_optional_user] = fake_user
    try:
        yield principal
    finally:
        for dep in replaced:
            app.dependency_overrides.pop(dep, None)
        app.dependency_overrides.update(saved)
