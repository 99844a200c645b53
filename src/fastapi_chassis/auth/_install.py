"""Wiring auth into an app: the per-app components, the JWKS route, the OpenAPI scheme."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fastapi_chassis.auth._keys import is_hmac
from fastapi_chassis.auth.passwords import PasswordHasher
from fastapi_chassis.auth.principal import Principal
from fastapi_chassis.auth.tokens import TokenService
from fastapi_chassis.errors import ConfigurationError
from fastapi_chassis.state import StateStore

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fastapi_chassis._chassis import Chassis

#: Loads the app's user for a verified principal (sync or async); None means "no such user".
UserLoader = Callable[[Principal], Any]

#: OpenAPI extension members the token router sets and `install()` consumes.
TOKEN_ENDPOINT_MARK = "x-chassis-token-endpoint"  # noqa: S105
SCOPES_MARK = "x-chassis-scopes"
SCHEME_NAME = "OAuth2"


@dataclass
class AuthComponents:
    """What the auth block keeps per app (`chassis.extensions["auth"]`)."""

    tokens: TokenService
    passwords: PasswordHasher
    user_loader: UserLoader | None = None


def get_auth(app: Any) -> AuthComponents:
    """The auth components of an app built with the chassis."""
    from fastapi_chassis._chassis import get_chassis

    auth = get_chassis(app).extensions.get("auth")
    if not isinstance(auth, AuthComponents):
        raise ConfigurationError("this app has no auth components; build it with build_app()")
    return auth


def get_token_service(app: Any) -> TokenService:
    """The `TokenService` of an app built with the chassis."""
    return get_auth(app).tokens


def get_password_hasher(app: Any) -> PasswordHasher:
    """The `PasswordHasher` of an app built with the chassis (shared concurrency cap)."""
    return get_auth(app).passwords


def install_auth(app: FastAPI, chassis: Chassis, *, user_loader: UserLoader | None) -> None:
    """Create the app's token service and hasher, serve the JWKS, describe the scheme.

    Keys load here, so a bad key fails at startup, naming its environment variable.
    """
    settings = chassis.settings
    store = chassis.extensions.get("state")
    tokens = TokenService(
        settings.auth,
        store=store if isinstance(store, StateStore) else None,
        env_var=lambda name: settings.env_var("auth", name),
    )
    chassis.extensions["auth"] = AuthComponents(
        tokens=tokens,
        passwords=PasswordHasher.from_settings(settings.auth),
        user_loader=user_loader,
    )
    if settings.auth.jwks_path and not is_hmac(settings.auth.algorithm):
        _add_jwks_route(app, settings.auth.jwks_path, tokens)
    _describe_security_scheme(app)


def _add_jwks_route(app: FastAPI, path: str, tokens: TokenService) -> None:
    body = tokens.jwks()

    async def jwks(_request: Request) -> JSONResponse:
        return JSONResponse(
            body,
            media_type="application/jwk-set+json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    app.add_route(path, jwks, methods=["GET"], include_in_schema=False)


def _describe_security_scheme(app: FastAPI) -> None:
    previous = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = previous()
        describe_bearer_scheme(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def describe_bearer_scheme(schema: dict[str, Any]) -> None:
    """Point the password flow at the token router (or fall back to HTTP bearer); list scopes.

    Also merges an operation's bearer requirements into one, so `CurrentUser` next to
    `require_scopes("a")` reads as "needs scope a", not "needs no scope or scope a".
    """
    token_path: str | None = None
    descriptions: dict[str, str] = {}
    used: set[str] = set()
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            if operation.pop(TOKEN_ENDPOINT_MARK, False):
                token_path = path
            descriptions.update(operation.pop(SCOPES_MARK, {}))
            used.update(_merge_requirements(operation))
    schemes = schema.get("components", {}).get("securitySchemes", {})
    if SCHEME_NAME not in schemes:
        return
    if token_path is None:
        schemes[SCHEME_NAME] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Bearer JWT access token.",
        }
        return
    password = schemes[SCHEME_NAME].setdefault("flows", {}).setdefault("password", {})
    # Relative to the server URL (OpenAPI 3.1), so the flow keeps working under a root_path.
    password["tokenUrl"] = token_path.lstrip("/")
    password["scopes"] = {
        scope: descriptions.get(scope, scope) for scope in sorted(used | set(descriptions))
    }


def _merge_requirements(operation: dict[str, Any]) -> set[str]:
    requirements = operation.get("security")
    if not requirements:
        return set()
    ours = [r for r in requirements if set(r) == {SCHEME_NAME}]
    scopes: set[str] = set()
    for requirement in ours:
        scopes.update(requirement[SCHEME_NAME])
    if len(ours) > 1:
        others = [r for r in requirements if set(r) != {SCHEME_NAME}]
        operation["security"] = [{SCHEME_NAME: sorted(scopes)}, *others]
    return scopes
