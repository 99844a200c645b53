"""Auth building blocks: argon2id passwords, JWT tokens, dependencies, an optional token router.

Each part is usable alone; `install()` wires the app's `TokenService` (on the app's shared
store, for revocation) and `PasswordHasher`, and serves the JWKS for public-key algorithms.
"""

from fastapi_chassis.auth._install import (
    AuthComponents,
    UserLoader,
    get_auth,
    get_password_hasher,
    get_token_service,
    install_auth,
)
from fastapi_chassis.auth.dependencies import (
    CurrentPrincipal,
    CurrentUser,
    InsufficientScope,
    NotAuthenticated,
    OptionalPrincipal,
    OptionalUser,
    Passwords,
    Tokens,
    bearer_scheme,
    get_current_principal,
    get_current_user,
    get_optional_principal,
    get_optional_user,
    require_scopes,
)
from fastapi_chassis.auth.passwords import PasswordHasher, PasswordTooLong
from fastapi_chassis.auth.principal import InvalidToken, Principal, TokenPair, parse_scopes
from fastapi_chassis.auth.router import InvalidCredentials, auth_router
from fastapi_chassis.auth.tokens import TokenService

__all__ = [
    "AuthComponents",
    "CurrentPrincipal",
    "CurrentUser",
    "InsufficientScope",
    "InvalidCredentials",
    "InvalidToken",
    "NotAuthenticated",
    "OptionalPrincipal",
    "OptionalUser",
    "PasswordHasher",
    "PasswordTooLong",
    "Passwords",
    "Principal",
    "TokenPair",
    "TokenService",
    "Tokens",
    "UserLoader",
    "auth_router",
    "bearer_scheme",
    "get_auth",
    "get_current_principal",
    "get_current_user",
    "get_optional_principal",
    "get_optional_user",
    "get_password_hasher",
    "get_token_service",
    "install_auth",
    "parse_scopes",
    "require_scopes",
]
