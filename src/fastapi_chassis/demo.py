"""The showcase service behind `fastapi-chassis demo`, on embedded defaults.

No Redis and no collector are needed; set `CHASSIS_*` variables to try other settings.
Each building block adds its part here.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel

from fastapi_chassis import (
    ChassisSettings,
    CurrentSettings,
    CursorPage,
    CursorPagination,
    NotFound,
    Page,
    Pagination,
    RequestId,
    SortKey,
    SortSpec,
    body_limit,
    build_app,
    rate_limit,
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


def create_app(settings: ChassisSettings | None = None) -> FastAPI:
    """Build the demo app (tests pass their own settings)."""
    settings = settings if settings is not None else ChassisSettings(service_name="chassis-demo")
    app = build_app(settings)

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
