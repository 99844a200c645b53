"""Your own settings: a `ChassisSettings` subclass with app fields and its own env prefix.

Every variable starts with `NOTES_` (chassis groups included: `NOTES_AUTH__JWT_SECRET`), and `__`
separates levels. Run it with `uvicorn --factory examples.custom_settings:create_app`, e.g.

    NOTES_MAX_NOTE_LENGTH=280 NOTES_STORAGE__DATABASE_URL=sqlite:///notes.db \
    NOTES_RATE_LIMIT__ENABLED=true NOTES_RATE_LIMIT__DEFAULT=60/minute \
    uvicorn --factory examples.custom_settings:create_app
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from fastapi_chassis import ChassisSettings, UnprocessableEntity, build_app, get_settings


class StorageSettings(BaseModel):
    """An app-specific group: `NOTES_STORAGE__DATABASE_URL`, or `NOTES_STORAGE` as JSON."""

    database_url: str = "sqlite:///:memory:"
    pool_size: int = Field(default=5, ge=1)


class NotesSettings(ChassisSettings):
    # Merged with the chassis' config: `__` nesting, `.env` support and validation stay.
    model_config = SettingsConfigDict(env_prefix="NOTES_")

    service_name: str = "notes"
    max_note_length: int = Field(default=1000, ge=1, description="Longest note, in characters.")
    storage: StorageSettings = Field(default_factory=StorageSettings)


# `get_settings` returns the instance the app was built with; the alias gives it the exact type,
# so `settings.max_note_length` type-checks in handlers.
Settings = Annotated[NotesSettings, Depends(get_settings)]


class NoteIn(BaseModel):
    text: str


def create_app(settings: NotesSettings | None = None) -> FastAPI:
    """Read settings when the app is built, never at import: tests set the environment first."""
    app = build_app(settings or NotesSettings())

    @app.post("/notes")
    async def create_note(note: NoteIn, settings: Settings) -> dict[str, int]:
        if len(note.text) > settings.max_note_length:
            raise UnprocessableEntity(
                f"a note holds at most {settings.max_note_length} characters",
                code="note_too_long",
            )
        return {"length": len(note.text)}

    @app.get("/about")
    async def about(settings: Settings) -> dict[str, str | int]:
        return {
            "service": settings.service_name,
            "database": settings.storage.database_url,
            "pool_size": settings.storage.pool_size,
            "rate_limit": settings.rate_limit.default if settings.rate_limit.enabled else "off",
        }

    return app
