"""Body limits: 64 KiB for the API, 20 MiB for one upload route, none for another."""

from fastapi import Request

from fastapi_chassis import BodyLimitSettings, ChassisSettings, body_limit, build_app

app = build_app(ChassisSettings(body_limit=BodyLimitSettings(max_bytes=64 * 1024)))


@app.post("/notes")
async def create_note(note: dict[str, str]) -> dict[str, int]:
    return {"fields": len(note)}


@app.post("/avatars")
@body_limit(20 * 1024 * 1024)
async def upload_avatar(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():  # never more than 20 MiB + one chunk in flight
        size += len(chunk)
    return {"bytes": size}


@app.put("/backups")
@body_limit(None)  # streamed to storage; no limit at all
async def upload_backup(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"bytes": size}
