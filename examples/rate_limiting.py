"""A global limit per client, a tighter one on the token endpoint, a quota per verified API key."""

from typing import Annotated

from fastapi import Depends, Header

from fastapi_chassis import ChassisSettings, RateLimitSettings, build_app, rate_limit
from fastapi_chassis.errors import Unauthorized
from fastapi_chassis.ratelimit import by_header

settings = ChassisSettings(
    service_name="notes",
    rate_limit=RateLimitSettings(enabled=True, default="10/second;1000/hour"),
)
app = build_app(settings)

API_KEYS = {"k1": "acme"}  # a real service looks keys up in its database or secret store


def require_api_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
    # Verify the key before it becomes a budget: an unchecked header would let a client pick
    # a fresh budget per request.
    if x_api_key not in API_KEYS:
        raise Unauthorized("a valid X-API-Key header is required")


@app.get("/notes")
async def list_notes() -> list[str]:
    return ["buy milk"]


@app.post("/token", dependencies=[Depends(rate_limit("5/minute"))])
async def token() -> dict[str, str]:
    return {"access_token": "..."}


@app.get(
    "/reports",
    dependencies=[
        Depends(require_api_key),
        Depends(rate_limit("30/hour", key=by_header("X-API-Key"))),
    ],
)
async def reports() -> list[str]:
    return ["2026-q3"]
