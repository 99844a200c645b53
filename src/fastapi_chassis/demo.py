"""The showcase service behind `fastapi-chassis demo`, on embedded defaults.

No Redis and no collector are needed; set `CHASSIS_*` variables to try other settings.
Each building block adds its part here.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

from fastapi_chassis import ChassisSettings, CurrentSettings, NotFound, build_app
from fastapi_chassis.errors import problem_responses


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

    @app.get("/items/{item_id}", tags=["demo"], responses=problem_responses(404))
    async def get_item(item_id: int) -> dict[str, int | str]:
        """A domain error: only items 1..10 exist; others answer 404 problem+json."""
        if not 1 <= item_id <= 10:
            raise NotFound(f"item {item_id} does not exist", code="item_not_found")
        return {"id": item_id, "name": f"item {item_id}"}

    return app


app = create_app()
