"""The showcase service behind `fastapi-chassis demo`: a small notes API on every block.

No Redis and no collector are needed: users and notes live in memory. Settings come from the
environment (`CHASSIS_*`) with the demo's defaults where it is silent (see `demo_settings`).
With `CHASSIS_REDIS__URL` set, every worker shares rate limits and token revocation through
Redis; give every worker the same `CHASSIS_AUTH__JWT_SECRET` so their tokens and cursors agree.
Users and notes stay per process: run one worker to try the notes flow.
"""

from __future__ import annotations

import os
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel

from fastapi_chassis._demo.accounts import DemoUser, Profile, User, UserStore, accounts_router
from fastapi_chassis._demo.notes import Note, NoteStore, notes_router
from fastapi_chassis._demo.settings import demo_settings
from fastapi_chassis.app import CurrentSettings, build_app
from fastapi_chassis.auth import (
    CurrentPrincipal,
    Principal,
    auth_router,
    get_password_hasher,
    require_scopes,
)
from fastapi_chassis.errors import NotFound, problem_responses
from fastapi_chassis.health import add_check
from fastapi_chassis.middleware import RequestId, body_limit
from fastapi_chassis.pagination import (
    CursorPage,
    CursorPagination,
    Page,
    Pagination,
    SortKey,
    SortSpec,
)
from fastapi_chassis.ratelimit import rate_limit
from fastapi_chassis.settings import ChassisSettings

__all__ = ["DemoUser", "Note", "Profile", "User", "app", "create_app", "demo_settings"]

#: Password attempts per client IP, on each token-router endpoint (login, refresh, logout).
LOGIN_LIMIT = "10/minute"


class ServiceInfo(BaseModel):
    service: str
    version: str
    environment: str
    #: The process that answered: under `uvicorn --workers 2` it varies between connections.
    worker: int


class Whoami(BaseModel):
    subject: str
    scopes: list[str]
    worker: int


class Product(BaseModel):
    id: int
    name: str
    price: int


# 240 products with many equal prices, so paging has ties to break (by the unique id).
PRODUCTS = [Product(id=i, name=f"product {i}", price=100 * (i % 12 + 1)) for i in range(1, 241)]
CHEAPEST_FIRST = SortSpec("price", SortKey("id", unique=True))


def create_app(settings: ChassisSettings | None = None) -> FastAPI:
    """Build the demo app; without `settings`, `demo_settings()` (tests pass their own)."""
    settings = settings if settings is not None else demo_settings()

    async def load_user(principal: Principal) -> DemoUser | None:
        return await users.load(principal)  # `users` needs the app's hasher: made just below

    app = build_app(settings, user_loader=load_user)
    users = UserStore(get_password_hasher(app))
    notes = NoteStore()

    app.include_router(
        auth_router(
            users.authenticate,
            subject=lambda user: user.username,
            scope_descriptions={
                "notes:read": "Read notes",
                "notes:write": "Write notes",
                "admin": "Administer the service (no demo user has it)",
            },
            dependencies=[Depends(rate_limit(LOGIN_LIMIT))],
        ),
        responses=problem_responses(429),
    )
    app.include_router(accounts_router(users))
    app.include_router(notes_router(notes))

    async def storage_ready() -> bool:
        return True  # in-memory storage; a real service pings its database here

    if settings.health.enabled:
        add_check(app, "storage", storage_ready, critical=False)

    @app.get("/", tags=["demo"])
    async def info(current: CurrentSettings) -> ServiceInfo:
        """Who is answering."""
        return ServiceInfo(
            service=current.service_name,
            version=current.version,
            environment=current.environment,
            worker=os.getpid(),
        )

    @app.get("/whoami", tags=["demo"], responses=problem_responses(401))
    async def whoami(principal: CurrentPrincipal) -> Whoami:
        """The verified token alone (no user lookup), and the worker that checked it."""
        return Whoami(
            subject=principal.subject, scopes=sorted(principal.scopes), worker=os.getpid()
        )

    @app.get(
        "/admin/stats",
        tags=["demo"],
        dependencies=[require_scopes("admin")],
        responses=problem_responses(401, 403),
    )
    async def admin_stats() -> dict[str, int]:
        """Needs the `admin` scope, which no demo user has: try it for a 403."""
        return {"users": len(users.users), "notes": len(notes.notes)}

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

    @app.get("/catalog/feed", tags=["demo"], responses=problem_responses(400))
    async def catalog_feed(
        params: CursorPagination, max_price: int | None = None
    ) -> CursorPage[Product]:
        """Cursor pagination, cheapest first: follow `next_cursor` / `prev_cursor`."""
        found = [p for p in PRODUCTS if max_price is None or p.price <= max_price]
        return params.window(CHEAPEST_FIRST, query={"max_price": max_price}).paginate(found)

    @app.get(
        "/limited",
        tags=["demo"],
        dependencies=[Depends(rate_limit("5/minute"))],
        responses=problem_responses(429),
    )
    async def limited() -> dict[str, str]:
        """Five calls a minute per client; the sixth gets 429 with Retry-After."""
        return {"status": "ok"}

    @app.get("/slow", tags=["demo"])
    async def slow(seconds: Annotated[float, Query(ge=0, le=5)] = 1.0) -> dict[str, float | int]:
        """Answer after `seconds` (at most 5): stop the server meanwhile and watch readiness
        turn 503 while this request still completes (draining)."""
        await anyio.sleep(seconds)
        return {"slept": seconds, "worker": os.getpid()}

    @app.post("/uploads", tags=["demo"], responses=problem_responses(413))
    @body_limit(8 * 1024 * 1024)
    async def upload(request: Request, request_id: RequestId) -> dict[str, int | str]:
        """Stream an upload of up to 8 MiB (other routes keep the 1 MiB default); count it."""
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"bytes": size, "request_id": request_id}

    return app


app = create_app()
