"""TokenService on its own: issue, verify, rotate a refresh token, revoke."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from pydantic import SecretStr

from fastapi_chassis import AuthSettings, InvalidToken, TokenService

tokens = TokenService(
    AuthSettings(
        jwt_secret=SecretStr("use-48-random-bytes-from-secrets.token_urlsafe-here"),
        issuer="https://auth.example.com",
        audience="notes-api",
        refresh_tokens=True,
    )
)


async def refused(check: Awaitable[object]) -> str:
    """Why `check` was refused (an AssertionError if it was accepted)."""
    try:
        await check
    except InvalidToken as exc:
        return str(exc.detail)
    raise AssertionError("the token was accepted")


async def main() -> None:
    access = tokens.issue_access_token("user-42", scopes=["notes:read"], claims={"tenant": "t1"})
    claims = await tokens.verify(access)  # signature, exp/nbf/iat, iss, aud, typ, revocation
    assert claims["sub"] == "user-42"
    assert claims["tenant"] == "t1"

    pair = tokens.issue_tokens("user-42", scopes=["notes:read"])
    assert pair.refresh_token is not None
    rotated = await tokens.refresh(pair.refresh_token)  # one use only
    # Reuse means the refresh token leaked: the whole login is revoked.
    assert "reused" in await refused(tokens.refresh(pair.refresh_token))
    assert await refused(tokens.verify(rotated.access_token)) == "token revoked"

    await tokens.revoke(claims["jti"], expires_at=claims["exp"])  # e.g. on logout
    assert await refused(tokens.verify(access)) == "token revoked"


if __name__ == "__main__":
    asyncio.run(main())
