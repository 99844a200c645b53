"""The showcase service behind `fastapi-chassis demo`, on embedded defaults.

No Redis and no collector are needed; set `CHASSIS_*` variables to try other settings.
Each building block adds its part here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from fastapi_chassis import (
    AuthSettings,
    ChassisSettings,
    Conflict,
    CurrentSettings,
    NotFound,
    Principal,
    auth_router,
    build_app,
    get_current_user,
    get_password_hasher,
    require_scopes,
)


class ServiceInfo(BaseModel):
    service: str
    version: str
    environment: str


@dataclass
class DemoUser:
    """A registered user, kept in memory."""

    username: str
    password_hash: str
    scopes: tuple[str, ...] = ("notes:read", "notes:write")


class Registration(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    password: str = Field(min_length=8, description="At most 1 KiB (UTF-8).")


class Profile(BaseModel):
    username: str
    scopes: list[str]


# How an app gives its own user class a precisely typed alias (mypy sees `DemoUser`).
User = Annotated[DemoUser, Depends(get_current_user)]


def create_app(settings: ChassisSettings | None = None) -> FastAPI:
    """Build the demo app (tests pass their own settings)."""
    settings = (
        settings
        if settings is not None
        else ChassisSettings(service_name="chassis-demo", auth=AuthSettings(refresh_tokens=True))
    )
    users: dict[str, DemoUser] = {}

    async def load_user(principal: Principal) -> DemoUser | None:
        return users.get(principal.subject)

    app = build_app(settings, user_loader=load_user)
    passwords = get_password_hasher(app)

    async def authenticate(username: str, password: str) -> DemoUser | None:
        user = users.get(username)
        # Unknown users still cost one (dummy) hash: timing does not reveal who exists.
        ok, new_hash = await passwords.averify_and_update(
            user.password_hash if user else None, password
        )
        if user is None or not ok:
            return None
        if new_hash is not None:
            user.password_hash = new_hash
        return user

    app.include_router(
        auth_router(
            authenticate,
            subject=lambda user: user.username,
            scope_descriptions={
                "notes:read": "Read notes",
                "notes:write": "Write notes",
                "admin": "Administer the service (no demo user has it)",
            },
        )
    )

    @app.post("/users", status_code=201, tags=["demo"])
    async def register(body: Registration) -> Profile:
        """Register a user (in memory); then log in at /auth/token or with "Authorize"."""
        if body.username in users:
            raise Conflict(f"user {body.username!r} already exists", code="user_exists")
        users[body.username] = DemoUser(body.username, await passwords.ahash(body.password))
        return Profile(username=body.username, scopes=list(users[body.username].scopes))

    @app.get("/me", tags=["demo"])
    async def me(user: User) -> Profile:
        """The logged-in user (needs a bearer token)."""
        return Profile(username=user.username, scopes=list(user.scopes))

    @app.post(
        "/notes", status_code=201, tags=["demo"], dependencies=[require_scopes("notes:write")]
    )
    async def add_note(user: User) -> dict[str, str]:
        """A scope-protected route: needs `notes:write`."""
        return {"author": user.username, "status": "saved"}

    @app.get("/admin/stats", tags=["demo"], dependencies=[require_scopes("admin")])
    async def admin_stats() -> dict[str, int]:
        """Needs the `admin` scope, which no demo user has: try it for a 403."""
        return {"users": len(users)}

    @app.get("/", tags=["demo"])
    async def info(current: CurrentSettings) -> ServiceInfo:
        """Who is answering."""
        return ServiceInfo(
            service=current.service_name,
            version=current.version,
            environment=current.environment,
        )

    @app.get("/items/{item_id}", tags=["demo"])
    async def get_item(item_id: int) -> dict[str, int | str]:
        """A domain error: only items 1..10 exist."""
        if not 1 <= item_id <= 10:
            raise NotFound(f"item {item_id} does not exist", code="item_not_found")
        return {"id": item_id, "name": f"item {item_id}"}

    return app


app = create_app()
