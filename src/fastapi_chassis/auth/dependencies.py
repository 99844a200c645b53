"""Auth dependencies: `CurrentPrincipal`, `CurrentUser`, `OptionalUser`, `require_scopes()`.

Failures follow RFC 6750: no credentials gives 401 with a bare `WWW-Authenticate: Bearer`;
bad credentials give 401 `error="invalid_token"`; missing scopes give 403
`error="insufficient_scope"`. Bodies are problem+json like every other chassis error.

An app with its own user class declares a precisely typed alias so mypy sees the real type:

    from typing import Annotated
    from fastapi import Depends
    from fastapi_chassis.auth import get_current_user

    User = Annotated[MyUser, Depends(get_current_user)]
"""

import inspect
from typing import Annotated, Any

from fastapi import Depends, Security
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection
from starlette.types import Scope

from fastapi_chassis._context import subject_var
from fastapi_chassis._counters import count_auth_failure
from fastapi_chassis.auth._install import SCHEME_NAME, get_auth
from fastapi_chassis.auth.passwords import PasswordHasher
from fastapi_chassis.auth.principal import InvalidToken, Principal, parse_scopes
from fastapi_chassis.auth.tokens import TokenService
from fastapi_chassis.errors import Forbidden, Unauthorized

__all__ = [
    "BEARER_SCHEME_NAME",
    "CurrentPrincipal",
    "CurrentUser",
    "InsufficientScope",
    "NotAuthenticated",
    "OptionalPrincipal",
    "OptionalUser",
    "Passwords",
    "Tokens",
    "bearer_scheme",
    "get_current_principal",
    "get_current_user",
    "get_optional_principal",
    "get_optional_user",
    "require_scopes",
]

#: Name of the security scheme in the OpenAPI document.
BEARER_SCHEME_NAME = SCHEME_NAME

_PRINCIPAL = "_chassis_principal"
_USER = "_chassis_user"
_UNSET = object()


class NotAuthenticated(Unauthorized):
    """The request carries no bearer credentials (RFC 6750: no error code)."""

    code = "not_authenticated"
    title = "Not authenticated"

    def __init__(self) -> None:
        super().__init__(
            "this endpoint needs a bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


class InsufficientScope(Forbidden):
    """The token lacks scopes the endpoint requires (RFC 6750 `insufficient_scope`)."""

    code = "insufficient_scope"
    title = "Insufficient scope"

    def __init__(self, required: tuple[str, ...], missing: list[str]) -> None:
        super().__init__(
            f"missing scope(s): {' '.join(missing)}",
            headers={
                "WWW-Authenticate": (
                    f'Bearer error="insufficient_scope", scope="{" ".join(required)}"'
                )
            },
            extra={"missing_scopes": missing},
        )


class _BearerScheme(OAuth2PasswordBearer):
    """Reads `Authorization: Bearer <token>` (scheme case-insensitive); None without one.

    A header with another scheme (Basic, ...) is not ours and counts as no credentials. The
    OpenAPI flow's `tokenUrl` is set per app by `install()` (the token router's path when it
    is included; a plain HTTP bearer scheme otherwise).
    """

    def __init__(self) -> None:
        super().__init__(
            tokenUrl="auth/token",
            scheme_name=BEARER_SCHEME_NAME,
            description="Bearer JWT access token.",
            auto_error=False,
        )

    async def __call__(self, request: HTTPConnection) -> str | None:
        return _credentials(request.scope)


def _credentials(scope: Scope) -> str | None:
    # The first Authorization header, as Starlette's `Headers.get` would pick it.
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip(" ").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return credentials.strip(" ")
    return None


#: The security dependency that extracts bearer credentials (declares the OpenAPI scheme).
bearer_scheme = _BearerScheme()


def _tokens(request: HTTPConnection) -> TokenService:
    return get_auth(request.app).tokens


def _passwords(request: HTTPConnection) -> PasswordHasher:
    return get_auth(request.app).passwords


#: The app's `TokenService` (to issue or revoke tokens in a handler).
Tokens = Annotated[TokenService, Depends(_tokens)]
#: The app's `PasswordHasher` (one per app, so its concurrency cap is shared).
Passwords = Annotated[PasswordHasher, Depends(_passwords)]


async def _principal(request: HTTPConnection) -> Principal | None:
    """The request's verified principal (None without credentials), verified once per request."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    cached = state.get(_PRINCIPAL, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[no-any-return]
    credentials = _credentials(request.scope)
    principal = None
    if credentials is not None:
        if not credentials:
            raise InvalidToken("empty bearer token")
        try:
            principal = Principal.from_claims(await _tokens(request).verify(credentials))
        except InvalidToken as exc:
            # The details are fixed strings in tokens.py, so the label set stays bounded.
            count_auth_failure((exc.detail or "invalid_token").replace(" ", "_")[:48])
            raise
        state["principal"] = principal  # `request.state.principal` in handlers
        subject_var.set(principal.subject)
    state[_PRINCIPAL] = principal
    return principal


class _PrincipalScheme(_BearerScheme):
    """Bearer credentials to a verified `Principal` in one dependency level.

    Each FastAPI dependency level costs a full `solve_dependencies` pass per request, so the
    principal dependencies read the header and verify the token themselves instead of
    depending on `bearer_scheme`. Being a security scheme, they still declare the bearer
    requirement in OpenAPI.
    """

    def __init__(self, *, required: bool) -> None:
        super().__init__()
        self.required = required

    async def __call__(self, request: HTTPConnection) -> Principal | None:  # type: ignore[override]
        principal = await _principal(request)
        if principal is None and self.required:
            count_auth_failure("missing_credentials")
            raise NotAuthenticated()
        return principal


get_optional_principal = _PrincipalScheme(required=False)
"""Dependency: the verified principal, or None when no bearer credentials were sent.

Raises `InvalidToken` (401) when credentials were sent but are not a valid, unrevoked access
token. Overriding it in tests changes `OptionalPrincipal` and `OptionalUser`.
"""

get_current_principal = _PrincipalScheme(required=True)
"""Dependency: the verified principal; `NotAuthenticated` (401) without credentials.

Overriding it in tests changes `CurrentPrincipal`, `CurrentUser` and `require_scopes()`.
"""


async def _load_user(request: HTTPConnection, principal: Principal) -> Any:
    cached = getattr(request.state, _USER, _UNSET)
    if cached is not _UNSET:
        return cached
    loader = get_auth(request.app).user_loader
    if loader is None:
        user: Any = principal
    else:
        user = loader(principal)
        if inspect.isawaitable(user):
            user = await user
        if user is None:
            raise InvalidToken("unknown subject")
    request.state.user = user
    setattr(request.state, _USER, user)
    return user


async def get_current_user(
    request: HTTPConnection, principal: Annotated[Principal, Depends(get_current_principal)]
) -> Any:
    """The app's user for the verified token (from `user_loader`; the principal without one).

    Raises:
        NotAuthenticated: no credentials (401).
        InvalidToken: bad credentials, or the loader found no user for the subject (401).
    """
    return await _load_user(request, principal)


async def get_optional_user(
    request: HTTPConnection, principal: Annotated[Principal | None, Depends(get_optional_principal)]
) -> Any:
    """Like `get_current_user`, but None when no credentials were sent."""
    if principal is None:
        return None
    return await _load_user(request, principal)


#: The verified token as a `Principal` (subject, scopes, claims); 401 without one.
CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]
#: The verified token's `Principal`, or None when no credentials were sent.
OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]
#: The app's user object (see `user_loader`); declare your own precisely typed alias.
CurrentUser = Annotated[Any, Depends(get_current_user)]
#: The app's user object, or None when no credentials were sent (still 401 for bad ones).
OptionalUser = Annotated[Any, Depends(get_optional_user)]


def require_scopes(*scopes: str) -> Any:
    """A dependency that requires every one of `scopes` (403 `insufficient_scope` otherwise).

    Use it in `dependencies=[require_scopes("notes:write")]` or as an alias,
    `NoteWriter = Annotated[Principal, require_scopes("notes:write")]`. The scopes appear in
    the operation's OpenAPI security requirement.

    Raises:
        ValueError: no scopes, or a malformed scope (at declaration time).
    """
    required = parse_scopes(scopes)
    if not required:
        raise ValueError("require_scopes() needs at least one scope")

    async def check_scopes(principal: CurrentPrincipal) -> Principal:
        missing = [scope for scope in required if scope not in principal.scopes]
        if missing:
            count_auth_failure("insufficient_scope")
            raise InsufficientScope(required, missing)
        return principal

    return Security(check_scopes, scopes=list(required))
