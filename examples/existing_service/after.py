"""The same service with the chassis. `before.py` is not edited: adding the chassis is one call.

Compare them: `uvicorn examples.existing_service.before:app` and
`uvicorn examples.existing_service.after:app`.
"""

from __future__ import annotations

from fastapi import Request

# Step 1: keep your app object with its middleware, handlers, lifespan and routes.
from examples.existing_service.before import app
from fastapi_chassis import ChassisSettings, NotFound, install

# Step 2: call install() once, after creating the app and before it serves (at the end of the
# module that creates it). Settings can come from CHASSIS_* variables instead: install(app).
install(app, ChassisSettings(service_name="orders"))


# Step 3, at your pace: new and migrated routes raise the chassis' errors (problem+json with a
# stable `code`) and use its dependencies, alongside the old ones.
@app.get("/v2/stock/{sku}")
async def read_stock_v2(sku: str, request: Request) -> dict[str, int]:
    stock: dict[str, int] = request.app.state.stock
    if sku not in stock:
        raise NotFound(f"no product {sku!r}", code="unknown_sku")
    return {sku: stock[sku]}
