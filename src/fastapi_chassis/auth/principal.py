"""What a verified token means: `Principal`, scopes, the token response, `InvalidToken`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from fastapi_chassis.errors import Unauthorized

__all__ = ["InvalidToken", "Principal", "TokenPair", "parse_scopes"]

# RFC 6749 scope-token: printable ASCII except space, `"` and `\`.
_SCOPE = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")


class InvalidToken(Unauthorized):
    """The presented token is malformed, expired, badly signed or revoked (RFC 6750)."""

    code = "invalid_token"
    title = "Invalid token"

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{detail}"'
            },
        )


def parse_scopes(value: str | Iterable[str]) -> tuple[str, ...]:
    """Scopes from a space-separated string (runs of spaces tolerated) or an iterable.

    Raises:
        ValueError: a scope contains a character RFC 6749 does not allow (control, `"`, `\\`).
    """
    items = value.split(" ") if isinstance(value, str) else list(value)
    scopes: list[str] = []
    for item in items:
        if item == "" and isinstance(value, str):
            continue
        if not _SCOPE.fullmatch(item):
            raise ValueError(f"invalid scope {item!r}: use printable ASCII without spaces")
        if item not in scopes:
            scopes.append(item)
    return tuple(scopes)


@dataclass(frozen=True)
class Principal:
    """Who a verified access token speaks for."""

    subject: str
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """The principal of verified claims."""
        return cls(
            subject=str(claims["sub"]),
            scopes=frozenset(parse_scopes(claims.get("scope", ""))),
            claims=dict(claims),
        )

    def has_scopes(self, *scopes: str) -> bool:
        """Whether every one of `scopes` was granted."""
        return all(scope in self.scopes for scope in scopes)


class TokenPair(BaseModel):
    """A token response (RFC 6749 section 5.1)."""

    access_token: str = Field(description="The access token (a JWT).")
    token_type: str = Field(default="bearer", description="Always `bearer`.")
    expires_in: int = Field(description="Access token lifetime, seconds.")
    refresh_token: str | None = Field(
        default=None, description="Refresh token, when refresh tokens are enabled."
    )
    scope: str = Field(default="", description="Granted scopes, space-separated.")
