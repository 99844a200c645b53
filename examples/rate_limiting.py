"""A global limit per client, a tighter one on the token endpoint, a quota per API key."""

from fastapi import Depends

from fastapi_chassis import ChassisSettings, RateLimitSettings, build_app, rate_limit
from fastapi_chassis.ratelimit import by_header

settings = ChassisSettings(
    service_name="notes",
    rate_limit=RateLimitSettings(enabled=True, default="10/second;1000/hour"),
)
app = build_app(settings)


@app.get("/notes")
async def list_notes() -> list[str]:
    return ["buy milk"]


@app.post("/token", dependencies=[Depends(rate_limit("5/minute"))])
async def token() -> dict[str, str]:
    return {"access_token": "..."}


@app.get("/reports", dependencies=[Depends(rate_limit("30/hour", key=by_header("X-API-Key")))])
async def reports() -> list[str]:
    return ["2026-q3"]
