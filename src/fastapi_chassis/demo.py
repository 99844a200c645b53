"""The showcase service behind `fastapi-chassis demo`, on embedded defaults.

No Redis and no collector are needed; set `CHASSIS_*` variables to try other settings.
Each building block adds its part here.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from fastapi_chassis import ChassisSettings, CurrentSettings, NotFound, build_app, rate_limit


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

    @app.get("/limited", tags=["demo"], dependencies=[Depends(rate_limit("5/minute"))])
    async def limited() -> dict[str, str]:
        """Five calls a minute per client; the sixth gets 429 with Retry-After."""
        return {"status": "ok"}

    return app


app = create_app()
