"""`auth_router()`: an optional OAuth2 password-flow token endpoint, refresh and logout.

    router = auth_router(authenticate=check_password)    # (username, password) -> user | None
    app.include_router(router)

Swagger UI's "Authorize" button works against it: `install()` points the OpenAPI password
flow's `tokenUrl` at wherever this router is included.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from fastapi_chassis.auth._install import SCOPES_MARK, TOKEN_ENDPOINT_MARK, get_auth
from fastapi_chassis.auth.dependencies import CurrentPrincipal
from fastapi_chassis.auth.principal import Principal, TokenPair, parse_scopes
from fastapi_chassis.errors import ConfigurationError, Unauthorized, problem_responses

__all__ = ["InvalidCredentials", "auth_router"]

#: `(username, password) -> user | None`, or a coroutine function returning the same.
Authenticate = Callable[[str, str], Any]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class InvalidCredentials(Unauthorized):
    """Wrong username or password; one answer for both, so usernames cannot be probed."""

    code = "invalid_credentials"
    title = "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("incorrect username or password", headers={"WWW-Authenticate": "Bearer"})


def default_subject(user: Any) -> str:
    """The token subject of a user: itself if a string, else its `id` or `username`."""
    if isinstance(user, str):
        return user
    if isinstance(user, Principal):
        return user.subject
    for attribute in ("id", "username"):
        value = getattr(user, attribute, None)
        if value is not None:
            return str(value)
    raise ConfigurationError(
        f"auth_router() cannot tell the subject of a {type(user).__name__}; "
        "pass subject=lambda user: str(user.<id field>)"
    )


def default_scopes(user: Any) -> Iterable[str]:
    """The scopes a user may be granted: its `scopes` attribute, else none."""
    if isinstance(user, Principal):
        return user.scopes
    scopes = getattr(user, "scopes", ())
    return parse_scopes(scopes)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


# Documented as application/problem+json, the content type these errors are sent with.
_ERRORS = problem_responses(401, 422)
_ERRORS[401]["description"] = "Wrong or missing credentials."
_ERRORS[422]["description"] = "Malformed form or password too long."


def auth_router(
    authenticate: Authenticate,
    *,
    prefix: str = "/auth",
    tags: Sequence[str] = ("auth",),
    dependencies: Sequence[Any] | None = None,
    subject: Callable[[Any], str] = default_subject,
    scopes: Callable[[Any], Iterable[str]] = default_scopes,
    claims: Callable[[Any], Mapping[str, Any]] | None = None,
    scope_descriptions: Mapping[str, str] | None = None,
    refresh: bool = True,
) -> APIRouter:
    """A router with `POST {prefix}/token`, `/refresh` (when `refresh`) and `/logout`.

    Args:
        authenticate: `(username, password) -> user | None`, sync or async. Return None for
            an unknown user *and* a wrong password; call `PasswordHasher.averify(None, ...)`
            for unknown users so both take the same time.
        dependencies: run before every endpoint of the router; the hook for a rate limit,
            e.g. `dependencies=[Depends(rate_limit("5/minute"))]`.
        subject: the token subject of the user `authenticate` returned (default: its `id`).
        scopes: the scopes that user may be granted (default: its `scopes` attribute).
        claims: extra claims for that user's tokens (default: none).
        scope_descriptions: shown in Swagger UI's "Authorize" dialog.
        refresh: serve `/refresh` (it answers 401 while `CHASSIS_AUTH__REFRESH_TOKENS` is off).
    """
    router = APIRouter(prefix=prefix, tags=list(tags), dependencies=list(dependencies or []))

    @router.post(
        "/token",
        response_model=TokenPair,
        response_model_exclude_none=True,
        responses=_ERRORS,
        summary="Log in (OAuth2 password flow)",
        openapi_extra={TOKEN_ENDPOINT_MARK: True, SCOPES_MARK: dict(scope_descriptions or {})},
    )
    async def issue_token(
        request: Request,
        response: Response,
        form: Annotated[OAuth2PasswordRequestForm, Depends()],
    ) -> TokenPair:
        """Exchange a username and password for tokens; `scope` narrows the grant."""
        auth = get_auth(request.app)
        auth.passwords.check_length(form.password)
        user = await _maybe_await(authenticate(form.username, form.password))
        if user is None:
            raise InvalidCredentials()
        allowed = parse_scopes(scopes(user))
        requested = set(form.scopes)
        granted = [s for s in allowed if s in requested] if requested else list(allowed)
        extra = dict(claims(user)) if claims is not None else None
        response.headers.update(_NO_STORE)
        return auth.tokens.issue_tokens(subject(user), scopes=granted, claims=extra)

    if refresh:

        @router.post(
            "/refresh",
            response_model=TokenPair,
            response_model_exclude_none=True,
            responses=_ERRORS,
            summary="Rotate a refresh token",
        )
        async def refresh_tokens(
            request: Request,
            response: Response,
            refresh_token: Annotated[str, Form(description="The refresh token.")],
        ) -> TokenPair:
            """A new token pair for a refresh token; a reused one revokes its whole session."""
            pair = await get_auth(request.app).tokens.refresh(refresh_token)
            response.headers.update(_NO_STORE)
            return pair

    @router.post(
        "/logout",
        status_code=204,
        responses={401: _ERRORS[401]},
        summary="Revoke the presented access token (and its session)",
    )
    async def logout(request: Request, principal: CurrentPrincipal) -> Response:
        """Revoke this access token and, with refresh tokens on, every token of its login."""
        await get_auth(request.app).tokens.revoke_claims(principal.claims)
        return Response(status_code=204)

    return router
