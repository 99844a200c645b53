"""Cursor pagination with SQLAlchemy 2.x (ORM, SQLite): the keyset condition as an expression.

`window.where_sql()` writes raw SQL; with SQLAlchemy, turn `window.condition` (a
`KeysetCondition`) into a column expression instead, so the ORM binds and types the values.
Run it with `uvicorn examples.sqlalchemy_keyset:app`, then follow `next_cursor` from
`/notes?limit=5` or `/notes?limit=5&sort=due`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Index, and_, create_engine, false, or_, select
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

from fastapi_chassis import (
    ChassisSettings,
    CursorPage,
    CursorPagination,
    KeysetCondition,
    KeysetTerm,
    KeysetWindow,
    SortKey,
    SortSpec,
    build_app,
)


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    created: Mapped[datetime]
    due: Mapped[date | None]
    title: Mapped[str]


# One index per sort order, in exactly that order, so each page is an index seek.
Index("notes_newest", Note.created.desc(), Note.id)
Index("notes_due", Note.due, Note.id)


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created: datetime
    due: date | None
    title: str


# Key names are the mapped attribute names. Many notes share `created` and `due`; `id` breaks ties.
SORTS = {
    "newest": SortSpec("-created", SortKey("id", unique=True)),
    "due": SortSpec(SortKey("due", nullable=True), SortKey("id", unique=True)),
}


def column(name: str) -> InstrumentedAttribute[Any]:
    attribute: InstrumentedAttribute[Any] = getattr(Note, name)
    return attribute


def _compare(term: KeysetTerm) -> ColumnElement[bool] | None:
    """`key <op> value`, where NULL is smaller than every value (as in SQLite's ORDER BY)."""
    col = column(term.key.name)
    if term.value is None:
        return col.is_not(None) if term.op == ">" else None  # nothing is below NULL
    if term.op == ">":
        return col > term.value
    if term.key.nullable:
        return or_(col < term.value, col.is_(None))
    return col < term.value


def keyset_where(condition: KeysetCondition) -> ColumnElement[bool]:
    """The rows past the boundary row: OR of the condition's terms, plus an index-seek bound."""
    branches = []
    for term in condition.terms:
        compare = _compare(term)
        if compare is None:
            continue
        equal = [
            column(key.name).is_(None) if value is None else column(key.name) == value
            for key, value in term.equal
        ]
        branches.append(and_(*equal, compare))
    if not branches:
        return false()
    where = or_(*branches)
    # The first key again, inclusive, outside the OR: a plain range the index can seek to.
    first = condition.terms[0]
    if first.value is None:
        return where
    col = column(first.key.name)
    if first.op == ">":
        return and_(col >= first.value, where)
    bound = or_(col <= first.value, col.is_(None)) if first.key.nullable else col <= first.value
    return and_(bound, where)


def keyset_order_by(window: KeysetWindow) -> list[ColumnElement[Any]]:
    """ORDER BY for the window: the sort order, reversed when paging backward."""
    return [
        column(key.name).desc() if key.descending != window.backward else column(key.name).asc()
        for key in window.sort.keys
    ]


def keyset_select(window: KeysetWindow) -> Any:
    """`SELECT notes ... WHERE <past the cursor> ORDER BY <sort> LIMIT <limit + 1>`."""
    query = select(Note).order_by(*keyset_order_by(window)).limit(window.fetch)
    if window.condition is not None:
        query = query.where(keyset_where(window.condition))
    return query


engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})


def seed(session: Session, count: int = 60) -> None:
    start = datetime(2025, 1, 1, 9, 0)
    session.add_all(
        Note(
            id=i,
            created=start + timedelta(minutes=i // 4),  # four notes per minute: duplicates
            due=None if i % 5 == 0 else date(2025, 2, 1) + timedelta(days=i % 3),
            title=f"note {i}",
        )
        for i in range(1, count + 1)
    )
    session.commit()


Base.metadata.create_all(engine)
with Session(engine) as _session:
    seed(_session)


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


DbSession = Annotated[Session, Depends(get_session)]

app = build_app(ChassisSettings(service_name="notes"))


@app.get("/notes")
def list_notes(
    params: CursorPagination, db: DbSession, sort: Literal["newest", "due"] = "newest"
) -> CursorPage[NoteOut]:
    window = params.window(SORTS[sort], query={"sort": sort})  # 400 on a foreign cursor
    rows = db.scalars(keyset_select(window))
    return window.page([NoteOut.model_validate(row) for row in rows])
