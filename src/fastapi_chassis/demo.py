"""The showcase service behind `fastapi-chassis demo`, on embedded defaults.

No Redis and no collector are needed; set `CHASSIS_*` variables to try other settings.
Each building block adds its part here.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from pydantic import BaseModel

from fastapi_chassis import (
    ChassisSettings,
    CurrentSettings,
    NotFound,
    RequestId,
    body_limit,
    build_app,
)


class ServiceInfo(BaseModel):
    service: str
    version: str
    environment: str


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

    @app.get("/items/{item_id}", tags=["demo"])
    async def get_item(item_id: int) -> dict[str, int | str]:
        """A domain error: only items 1..10 exist."""
        if not 1 <= item_id <= 10:
            raise NotFound(f"item {item_id} does not exist", code="item_not_found")
        return {"id": item_id, "name": f"item {item_id}"}

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
