"""Demo notes: CRUD owned by the current user, scopes, cursor-paginated listing, domain errors."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from fastapi_chassis._demo.accounts import DemoUser, User
from fastapi_chassis.auth import require_scopes
from fastapi_chassis.errors import Conflict, Forbidden, NotFound, problem_responses
from fastapi_chassis.observability.logging import Logger
from fastapi_chassis.pagination import CursorPage, CursorPagination, SortKey, SortSpec

__all__ = ["Note", "NoteStore", "notes_router"]

_TITLE_DOC = "Unique per owner (case-insensitive)."


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, description=_TITLE_DOC)
    body: str = Field(default="", max_length=10_000)
    shared: bool = Field(default=False, description="Readable (not writable) by every user.")


class NotePatch(BaseModel):
    """Fields to change; absent or null fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200, description=_TITLE_DOC)
    body: str | None = Field(default=None, max_length=10_000)
    shared: bool | None = None


class Note(BaseModel):
    id: int
    owner: str
    title: str
    body: str
    shared: bool
    created_at: datetime
    updated_at: datetime


class NoteNotFound(NotFound):
    code = "note_not_found"


class NotNoteOwner(Forbidden):
    code = "not_note_owner"


class NoteTitleTaken(Conflict):
    code = "note_title_taken"


#: Listing orders; each ends with the unique id, so rows sharing a title or a time never skip.
SORTS: dict[str, SortSpec] = {
    "-created_at": SortSpec("-created_at", SortKey("id", descending=True, unique=True)),
    "created_at": SortSpec("created_at", SortKey("id", unique=True)),
    "title": SortSpec("title", SortKey("id", unique=True)),
}
SortName = Literal["-created_at", "created_at", "title"]


class NoteStore:
    """Notes of this process, by id."""

    def __init__(self) -> None:
        self.notes: dict[int, Note] = {}
        self._ids = itertools.count(1)

    def visible(self, note_id: int, user: DemoUser) -> Note:
        """A note the user may read: their own, or one shared by someone else."""
        note = self.notes.get(note_id)
        if note is None or (note.owner != user.username and not note.shared):
            # Unshared notes of others answer like missing ones: ids reveal nothing.
            raise NoteNotFound(f"note {note_id} does not exist")
        return note

    def owned(self, note_id: int, user: DemoUser) -> Note:
        """A note the user may change: only their own."""
        note = self.visible(note_id, user)
        if note.owner != user.username:
            raise NotNoteOwner(f"note {note_id} belongs to another user; it is read-only to you")
        return note

    def check_title(self, owner: str, title: str, *, keep: int | None = None) -> None:
        wanted = title.casefold()
        for note in self.notes.values():
            if note.owner == owner and note.id != keep and note.title.casefold() == wanted:
                raise NoteTitleTaken(
                    f"you already have a note titled {title!r}", extra={"note_id": note.id}
                )

    def add(self, owner: str, data: NoteIn) -> Note:
        self.check_title(owner, data.title)
        now = datetime.now(timezone.utc)
        note = Note(id=next(self._ids), owner=owner, created_at=now, updated_at=now, **dict(data))
        self.notes[note.id] = note
        return note


def notes_router(store: NoteStore) -> APIRouter:
    """`/notes` CRUD: reading needs `notes:read`, writing `notes:write`."""
    router = APIRouter(prefix="/notes", tags=["notes"])
    read = [require_scopes("notes:read")]
    write = [require_scopes("notes:write")]

    @router.post(
        "", status_code=201, dependencies=write, responses=problem_responses(401, 403, 409)
    )
    async def create_note(body: NoteIn, user: User, response: Response, log: Logger) -> Note:
        """Create a note; 409 `note_title_taken` when you already have one with that title."""
        note = store.add(user.username, body)
        response.headers["Location"] = f"/notes/{note.id}"
        log.info("note_created", note_id=note.id)
        return note

    @router.get("", dependencies=read, responses=problem_responses(400, 401, 403))
    async def list_notes(
        params: CursorPagination,
        user: User,
        sort: SortName = "-created_at",
        q: str | None = None,
    ) -> CursorPage[Note]:
        """Your notes, a page at a time: follow `next_cursor` / `prev_cursor`.

        `q` keeps notes whose title contains it (case-insensitive). A cursor only works with
        the `sort` and `q` it was issued for (400 otherwise).
        """
        needle = q.casefold() if q else None
        mine = (
            n
            for n in store.notes.values()
            if n.owner == user.username and (needle is None or needle in n.title.casefold())
        )
        return params.window(SORTS[sort], query={"q": needle}).paginate(mine)

    @router.get("/{note_id}", dependencies=read, responses=problem_responses(401, 403, 404))
    async def get_note(note_id: int, user: User) -> Note:
        """One of your notes, or a note another user shared."""
        return store.visible(note_id, user)

    @router.patch("/{note_id}", dependencies=write, responses=problem_responses(401, 403, 404, 409))
    async def update_note(note_id: int, body: NotePatch, user: User) -> Note:
        """Change your note; 403 `not_note_owner` on a note someone shared with you."""
        note = store.owned(note_id, user)
        changes = body.model_dump(exclude_none=True)
        if "title" in changes:
            store.check_title(user.username, changes["title"], keep=note.id)
        if changes:
            changes["updated_at"] = datetime.now(timezone.utc)
            note = store.notes[note.id] = note.model_copy(update=changes)
        return note

    @router.delete(
        "/{note_id}",
        status_code=204,
        dependencies=write,
        responses=problem_responses(401, 403, 404),
    )
    async def delete_note(note_id: int, user: User) -> Response:
        """Delete your note."""
        store.owned(note_id, user)
        del store.notes[note_id]
        return Response(status_code=204)

    return router
