"""The 20-line service from the README: settings, one route, one domain error."""

from fastapi_chassis import ChassisSettings, CurrentSettings, NotFound, build_app


class Settings(ChassisSettings):
    greeting: str = "hello"


app = build_app(Settings(service_name="quickstart"))

NOTES = {1: "buy milk"}


@app.get("/notes/{note_id}")
async def read_note(note_id: int, settings: CurrentSettings) -> dict[str, str]:
    if note_id not in NOTES:
        raise NotFound(f"note {note_id} does not exist", code="note_not_found")
    return {"note": NOTES[note_id], "service": settings.service_name}
