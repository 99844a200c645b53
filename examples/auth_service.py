"""A service with logins: argon2id passwords, the token router, a typed user, scopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from fastapi_chassis import (
    AuthSettings,
    ChassisSettings,
    Principal,
    auth_router,
    build_app,
    get_current_user,
    get_password_hasher,
    require_scopes,
)


@dataclass
class User:
    id: int
    username: str
    password_hash: str
    scopes: list[str] = field(default_factory=list)


USERS: dict[str, User] = {}  # your database


async def load_user(principal: Principal) -> User | None:
    """Turn a verified token into your user; None (deleted user) answers 401."""
    return next((u for u in USERS.values() if str(u.id) == principal.subject), None)


settings = ChassisSettings(service_name="notes", auth=AuthSettings(refresh_tokens=True))
app = build_app(settings, user_loader=load_user)
passwords = get_password_hasher(app)


async def authenticate(username: str, password: str) -> User | None:
    user = USERS.get(username)
    # None for unknown users still runs one (dummy) hash: same time, same answer.
    ok, new_hash = await passwords.averify_and_update(
        user.password_hash if user else None, password
    )
    if user is None or not ok:
        return None
    if new_hash is not None:  # parameters changed since this hash was made: upgrade it
        user.password_hash = new_hash
    return user


app.include_router(
    auth_router(authenticate, scope_descriptions={"notes:write": "Create and edit notes"})
)

# A precisely typed alias: handlers get a `User`, and mypy knows it.
CurrentAccount = Annotated[User, Depends(get_current_user)]


@app.get("/me")
async def me(user: CurrentAccount) -> dict[str, str]:
    return {"username": user.username}


@app.post("/notes", status_code=201, dependencies=[require_scopes("notes:write")])
async def add_note(user: CurrentAccount) -> dict[str, str]:
    return {"author": user.username}


def add_user(username: str, password: str, scopes: list[str]) -> None:
    """Registration, reduced to its essence (hashing blocks: use `ahash` in handlers)."""
    USERS[username] = User(len(USERS) + 1, username, passwords.hash(password), scopes)
