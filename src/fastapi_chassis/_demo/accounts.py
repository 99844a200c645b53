"""Demo accounts: registration, password checks for the token router, the user loader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from fastapi_chassis.auth import PasswordHasher, Principal, get_current_user
from fastapi_chassis.errors import Conflict, problem_responses
from fastapi_chassis.ratelimit import rate_limit

__all__ = ["REGISTER_LIMIT", "DemoUser", "Profile", "User", "UserStore", "accounts_router"]

#: Registrations per client IP: each one costs an argon2 hash.
REGISTER_LIMIT = "5/minute"


@dataclass
class DemoUser:
    """A registered user, kept in memory."""

    username: str
    password_hash: str
    scopes: tuple[str, ...] = ("notes:read", "notes:write")


# How an app gives its own user class a precisely typed alias (mypy sees `DemoUser`).
User = Annotated[DemoUser, Depends(get_current_user)]


class Registration(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    password: str = Field(min_length=8, description="At most 1 KiB (UTF-8).")


class Profile(BaseModel):
    username: str
    scopes: list[str]


class UsernameTaken(Conflict):
    """A domain error of the demo's own: one short class, its own stable `code`."""

    code = "user_exists"
    title = "Username taken"


class UserStore:
    """Users of this process, by username (the token subject)."""

    def __init__(self, passwords: PasswordHasher) -> None:
        self.passwords = passwords
        self.users: dict[str, DemoUser] = {}

    async def load(self, principal: Principal) -> DemoUser | None:
        """The `user_loader` given to `build_app()`: `CurrentUser` for a verified token."""
        return self.users.get(principal.subject)

    async def authenticate(self, username: str, password: str) -> DemoUser | None:
        """The token router's password check (rehashes on login when parameters changed)."""
        user = self.users.get(username)
        # Unknown users still cost one (dummy) hash: timing does not reveal who exists.
        ok, new_hash = await self.passwords.averify_and_update(
            user.password_hash if user else None, password
        )
        if user is None or not ok:
            return None
        if new_hash is not None:
            user.password_hash = new_hash
        return user


def accounts_router(store: UserStore) -> APIRouter:
    """`POST /users` (register, rate-limited) and `GET /me`."""
    router = APIRouter(tags=["accounts"])

    @router.post(
        "/users",
        status_code=201,
        dependencies=[Depends(rate_limit(REGISTER_LIMIT))],
        responses=problem_responses(409, 429),
    )
    async def register(body: Registration) -> Profile:
        """Register a user (in memory); then log in at /auth/token or with "Authorize"."""
        if body.username in store.users:
            raise UsernameTaken(f"user {body.username!r} already exists")
        password_hash = await store.passwords.ahash(body.password)
        if body.username in store.users:  # registered by a concurrent request meanwhile
            raise UsernameTaken(f"user {body.username!r} already exists")
        user = store.users[body.username] = DemoUser(body.username, password_hash)
        return Profile(username=user.username, scopes=list(user.scopes))

    @router.get("/me", responses=problem_responses(401))
    async def me(user: User) -> Profile:
        """The logged-in user (needs a bearer token)."""
        return Profile(username=user.username, scopes=list(user.scopes))

    return router
