"""Offset and cursor pagination over SQLite (stdlib `sqlite3`): the query is yours.

Run it with `uvicorn examples.pagination_sqlite:app`, then try
`/notes?page=2&size=5&tag=work` and `/notes/feed?limit=5&tag=work` (follow `next_cursor`).
"""

from __future__ import annotations

import sqlite3

from pydantic import BaseModel

from fastapi_chassis import (
    ChassisSettings,
    CursorPage,
    CursorPagination,
    Page,
    Pagination,
    PaginationSettings,
    SortKey,
    SortSpec,
    build_app,
)


class Note(BaseModel):
    id: int
    created: int
    tag: str


# Newest first; notes created in the same second are ordered by id, the unique tie-breaker.
NEWEST_FIRST = SortSpec("-created", SortKey("id", unique=True))

db = sqlite3.connect(":memory:", check_same_thread=False)
db.row_factory = sqlite3.Row
db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, created INTEGER NOT NULL, tag TEXT)")
db.execute("CREATE INDEX notes_feed ON notes (tag, created DESC, id)")
db.executemany(
    "INSERT INTO notes (id, created, tag) VALUES (?, ?, ?)",
    [(i, 1_700_000_000 + i // 3, "work" if i % 2 else "home") for i in range(1, 101)],
)

app = build_app(ChassisSettings(pagination=PaginationSettings(link_header=True)))


@app.get("/notes")
async def list_notes(params: Pagination, tag: str = "work") -> Page[Note]:
    """Offset pagination: fine for small tables and "jump to page N" UIs."""
    total = db.execute("SELECT COUNT(*) FROM notes WHERE tag = ?", [tag]).fetchone()[0]
    rows = db.execute(
        "SELECT * FROM notes WHERE tag = ? ORDER BY created DESC, id ASC LIMIT ? OFFSET ?",
        [tag, params.limit, params.offset],
    )
    return Page.create([Note(**row) for row in rows], total, params)


@app.get("/notes/feed")
async def note_feed(params: CursorPagination, tag: str = "work") -> CursorPage[Note]:
    """Cursor pagination: the same cost on every page, stable while rows are added."""
    window = params.window(NEWEST_FIRST, query={"tag": tag})  # 400 on a bad cursor
    # Both fragments come from the sort spec and bind values as `?` parameters.
    after, args = window.where_sql()
    rows = db.execute(
        f"SELECT * FROM notes WHERE tag = ? AND {after} ORDER BY {window.order_by_sql()} LIMIT ?",
        [tag, *args, window.fetch],
    )
    return window.page([Note(**row) for row in rows])
