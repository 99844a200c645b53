"""The showcase service behind `fastapi-chassis demo`, on embedded defaults.

No Redis and no collector are needed; set `CHASSIS_*` variables to try other settings.
Each building block adds its part here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, Field

from fastapi_chassis import (
    AuthSettings,
    ChassisSettings,
    Conflict,
    CurrentSettings,
    CursorPage,
    CursorPagination,
    NotFound,
    Page,
    Pagination,
    Principal,
    RequestId,
    SortKey,
    SortSpec,
    auth_router,
    body_limit,
    build_app,
    get_current_user,
    get_password_hasher,
    rate_limit,
    require_scopes,
)
from fastapi_chassis.errors import problem_responses


class ServiceInfo(BaseModel):
    service: str
    version: str
    environment: str


class Product(BaseModel):
    id: int
    name: str
    price: int


# 240 products with many equal prices, so paging has ties to break (by the unique id).
PRODUCTS = [Product(id=i, name=f"product {i}", price=100 * (i % 12 + 1)) for i in range(1, 241)]
CHEAPEST_FIRST = SortSpec("price", SortKey("id", unique=True))


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

    @app.get("/items/{item_id}", tags=["demo"], responses=problem_responses(404))
    async def get_item(item_id: int) -> dict[str, int | str]:
        """A domain error: only items 1..10 exist; others answer 404 problem+json."""
        if not 1 <= item_id <= 10:
            raise NotFound(f"item {item_id} does not exist", code="item_not_found")
        return {"id": item_id, "name": f"item {item_id}"}

    @app.get("/catalog", tags=["demo"])
    async def catalog(params: Pagination, max_price: int | None = None) -> Page[Product]:
        """Offset pagination (`?page=2&size=10`) over an in-memory list."""
        found = [p for p in PRODUCTS if max_price is None or p.price <= max_price]
        return Page.create(found[params.offset : params.offset + params.limit], len(found), params)

    @app.get("/catalog/feed", tags=["demo"])
    async def catalog_feed(
        params: CursorPagination, max_price: int | None = None
    ) -> CursorPage[Product]:
        """Cursor pagination, cheapest first: follow `next_cursor` / `prev_cursor`."""
        found = [p for p in PRODUCTS if max_price is None or p.price <= max_price]
        return params.window(CHEAPEST_FIRST, query={"max_price": max_price}).paginate(found)

    @app.get("/limited", tags=["demo"], dependencies=[Depends(rate_limit("5/minute"))])
    async def limited() -> dict[str, str]:
        """Five calls a minute per client; the sixth gets 429 with Retry-After."""
        return {"status": "ok"}

    @app.post("/uploads", tags=["demo"])
    @body_limit(8 * 1024 * 1024)
    async def upload(request: Request, request_id: RequestId) -> dict[str, int | str]:
        """Stream an upload of up to 8 MiB (other routes keep the 1 MiB default); count it."""
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"bytes": size, "request_id": request_id}

    return app


app = create_app()
