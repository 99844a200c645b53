from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_chassis import (
    ChassisError,
    ConfigurationError,
    CursorPage,
    CursorParams,
    KeysetWindow,
    SortKey,
    SortSpec,
)

KEY = b"k" * 32
Row = dict[str, Any]
Fetch = Callable[[KeysetWindow], CursorPage[Row]]


def in_memory(rows: list[Row]) -> Fetch:
    return lambda window: window.paginate(rows)


def walk_forward(
    sort: SortSpec, limit: int, fetch: Fetch, between: Callable[[], None]
) -> list[Row]:
    seen: list[Row] = []
    cursor: str | None = None
    for _ in range(10_000):
        page = fetch(CursorParams(cursor=cursor, limit=limit, key=KEY).window(sort))
        assert len(page.items) <= limit
        seen.extend(page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
        between()
    raise AssertionError("walk did not end")


def walk_backward_from_end(
    sort: SortSpec, limit: int, fetch: Fetch, between: Callable[[], None]
) -> list[Row]:
    cursor: str | None = None
    while True:  # to the last page, without inserting
        page = fetch(CursorParams(cursor=cursor, limit=limit, key=KEY).window(sort))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    seen = list(page.items)
    for _ in range(10_000):
        if page.prev_cursor is None:
            return seen
        between()
        page = fetch(CursorParams(cursor=page.prev_cursor, limit=limit, key=KEY).window(sort))
        assert 0 < len(page.items) <= limit
        seen[0:0] = page.items
    raise AssertionError("walk did not end")


def dataset(count: int, seed: int) -> list[Row]:
    rng = random.Random(seed)
    return [
        {"id": i, "score": rng.choice([1, 2, 3]), "group": rng.choice(["x", "y"])}
        for i in range(1, count + 1)
    ]


SPECS = [
    SortSpec("score", SortKey("id", unique=True)),
    SortSpec("-score", SortKey("id", unique=True)),
    SortSpec("-score", "group", SortKey("id", unique=True, descending=True)),
    SortSpec("group", "-score", SortKey("id", unique=True)),
]


@pytest.mark.parametrize("sort", SPECS, ids=repr)
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_walk_over_duplicate_sort_values_sees_every_row_once_in_order_despite_inserts(
    sort: SortSpec, direction: str
) -> None:
    rows = dataset(200, seed=7)
    original = sort.sorted(rows)
    rng = random.Random(11)
    next_id = [1000]

    def insert_some() -> None:
        for _ in range(3):
            next_id[0] += 1
            rows.append({"id": next_id[0], "score": rng.choice([1, 2, 3]), "group": "x"})

    walk = walk_forward if direction == "forward" else walk_backward_from_end
    seen = walk(sort, 7, in_memory(rows), insert_some)
    ids = [r["id"] for r in seen]
    assert len(ids) == len(set(ids)), "a row was returned twice"
    assert [r for r in seen if r["id"] <= 200] == original
    assert seen == sort.sorted(seen)


def test_first_and_last_pages_have_no_cursor_on_their_open_side() -> None:
    rows = dataset(10, seed=1)
    sort = SPECS[0]
    first = CursorParams(limit=4, key=KEY).window(sort).paginate(rows)
    assert first.prev_cursor is None
    assert first.next_cursor is not None
    whole = CursorParams(limit=10, key=KEY).window(sort).paginate(rows)
    assert (whole.next_cursor, whole.prev_cursor) == (None, None)
    empty = CursorParams(limit=3, key=KEY).window(sort).paginate([])
    assert (empty.items, empty.next_cursor, empty.prev_cursor) == ([], None, None)


def sqlite_fetch(connection: sqlite3.Connection) -> Fetch:
    def fetch(window: KeysetWindow) -> CursorPage[Row]:
        where, args = window.where_sql()
        sql = f"SELECT * FROM t WHERE {where} ORDER BY {window.order_by_sql()} LIMIT ?"  # noqa: S608
        return window.page([dict(r) for r in connection.execute(sql, [*args, window.fetch])])

    return fetch


def sqlite_table(rows: Sequence[Row]) -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    connection.row_factory = sqlite3.Row
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT)")
    connection.executemany("INSERT INTO t VALUES (:id, :a, :b)", rows)
    return connection


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "a": st.one_of(st.none(), st.integers(-2, 2)),
            "b": st.sampled_from(["", "a", "B", "b", "é", "z"]),
        }
    ),
    max_size=40,
).map(lambda rs: [{"id": i, **r} for i, r in enumerate(rs)])

spec_strategy = st.builds(
    lambda order, flags, id_desc: SortSpec(
        *[
            SortKey(name, descending=flag, nullable=name == "a")
            for name, flag in zip(order, flags, strict=False)
        ],
        SortKey("id", unique=True, descending=id_desc),
    ),
    st.permutations(["a", "b"]).flatmap(lambda p: st.integers(0, 2).map(lambda n: p[:n])),
    st.lists(st.booleans(), min_size=2, max_size=2),
    st.booleans(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, sort=spec_strategy, limit=st.integers(1, 6))
def test_walking_all_pages_equals_the_sorted_dataset(
    rows: list[Row], sort: SortSpec, limit: int
) -> None:
    expected = sort.sorted(rows)
    nothing = lambda: None  # noqa: E731
    assert walk_forward(sort, limit, in_memory(rows), nothing) == expected
    assert walk_backward_from_end(sort, limit, in_memory(rows), nothing) == expected
    connection = sqlite_table(rows)
    try:
        assert walk_forward(sort, limit, sqlite_fetch(connection), nothing) == expected
        assert walk_backward_from_end(sort, limit, sqlite_fetch(connection), nothing) == expected
    finally:
        connection.close()


def test_sql_condition_for_mixed_directions() -> None:
    sort = SortSpec("-created", SortKey("id", unique=True))
    page = (
        CursorParams(limit=1, key=KEY)
        .window(sort)
        .paginate([{"created": 5, "id": 1}, {"created": 4, "id": 2}])
    )
    window = CursorParams(cursor=page.next_cursor, limit=1, key=KEY).window(sort)
    assert window.where_sql() == (
        '"created" <= ? AND (("created" < ?) OR ("created" = ? AND "id" > ?))',
        [5, 5, 5, 1],
    )
    assert window.order_by_sql() == '"created" DESC, "id" ASC'
    back = CursorParams(cursor=page.next_cursor, limit=1, key=KEY).window(sort)
    assert back.direction == "after"
    previous = (
        CursorParams(limit=1, key=KEY)
        .window(sort)
        .paginate([{"created": 5, "id": 1}, {"created": 4, "id": 2}])
    )
    assert previous.prev_cursor is None


def test_backward_window_reverses_comparisons_and_order() -> None:
    sort = SortSpec("-created", SortKey("id", unique=True))
    rows = [{"created": 5, "id": 1}, {"created": 4, "id": 2}, {"created": 4, "id": 3}]
    forward = CursorParams(limit=2, key=KEY).window(sort).paginate(rows)
    second = CursorParams(cursor=forward.next_cursor, limit=2, key=KEY).window(sort).paginate(rows)
    window = CursorParams(cursor=second.prev_cursor, limit=2, key=KEY).window(sort)
    assert window.backward
    assert window.where_sql() == (
        '"created" >= ? AND (("created" > ?) OR ("created" = ? AND "id" < ?))',
        [4, 4, 4, 3],
    )
    assert window.order_by_sql() == '"created" ASC, "id" DESC'
    assert window.order_by_sql(nulls=True) == '"created" ASC NULLS FIRST, "id" DESC NULLS LAST'
    assert window.paginate(rows).items == rows[:2]


def test_nullable_key_renders_null_aware_sql() -> None:
    sort = SortSpec(SortKey("due", nullable=True), SortKey("id", unique=True))
    rows = [{"due": None, "id": 1}, {"due": 3, "id": 2}]
    page = CursorParams(limit=1, key=KEY).window(sort).paginate(rows)
    after_null = CursorParams(cursor=page.next_cursor, limit=1, key=KEY).window(sort)
    assert after_null.where_sql() == (
        '(("due" IS NOT NULL) OR ("due" IS NULL AND "id" > ?))',
        [1],
    )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ((), "at least one key"),
        (("created",), "unique tie-breaker"),
        (("-created", "id"), "unique tie-breaker"),
        ((SortKey("id", unique=True), "created"), "unique tie-breaker"),
        ((SortKey("id", unique=True), SortKey("x", unique=True)), "only the last"),
        (("a", "a", SortKey("id", unique=True)), "repeats"),
    ],
)
def test_sort_spec_without_a_proper_tie_breaker_is_refused_at_definition(
    keys: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SortSpec(*keys)


@pytest.mark.parametrize("name", ["", "1x", "a b", 'x"; DROP TABLE t; --', "a..b"])
def test_sort_key_names_must_be_identifiers(name: str) -> None:
    with pytest.raises(ConfigurationError, match="identifier"):
        SortKey(name)


def test_unique_key_cannot_be_nullable() -> None:
    with pytest.raises(ConfigurationError, match="NULL"):
        SortKey("id", unique=True, nullable=True)


def test_a_cursor_too_long_for_the_limit_is_a_server_error_naming_the_fix() -> None:
    sort = SortSpec("title", SortKey("id", unique=True))
    rows = [{"title": "x" * 2000, "id": 1}, {"title": "y", "id": 2}]
    with pytest.raises(ChassisError, match="CURSOR_MAX_LENGTH"):
        CursorParams(limit=1, key=KEY).window(sort).paginate(rows)


def test_values_read_mappings_rows_and_attributes() -> None:
    class Obj:
        id = 3
        score = 9

    sort = SortSpec("score", SortKey("id", unique=True))
    connection = sqlite_table([])
    row = connection.execute("SELECT 9 AS score, 3 AS id").fetchone()
    assert sort.values({"score": 9, "id": 3}) == sort.values(Obj()) == sort.values(row) == (9, 3)


@pytest.mark.parametrize("sort", SPECS[:2], ids=repr)
@pytest.mark.parametrize("backward", [False, True])
def test_rendered_condition_lets_sqlite_seek_the_index_instead_of_scanning(
    sort: SortSpec, backward: bool
) -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, score INTEGER NOT NULL)")
    connection.execute(f"CREATE INDEX t_sort ON t ({sort.order_by_sql()})")
    rows = [{"id": i, "score": i % 5} for i in range(1, 50)]
    connection.executemany("INSERT INTO t VALUES (:id, :score)", rows)
    page = CursorParams(limit=10, key=KEY).window(sort).paginate(rows)
    second = CursorParams(cursor=page.next_cursor, limit=10, key=KEY).window(sort).paginate(rows)
    cursor = second.prev_cursor if backward else second.next_cursor
    window = CursorParams(cursor=cursor, limit=10, key=KEY).window(sort)
    assert window.backward is backward
    where, args = window.where_sql()
    plan = connection.execute(
        f"EXPLAIN QUERY PLAN SELECT * FROM t WHERE {where} "  # noqa: S608
        f"ORDER BY {window.order_by_sql()} LIMIT 11",
        args,
    ).fetchall()
    detail = " ".join(str(step[-1]) for step in plan)
    assert "SEARCH" in detail, detail
    assert "TEMP B-TREE" not in detail, detail


def test_cursor_survives_deletion_of_its_boundary_row() -> None:
    rows = dataset(30, seed=3)
    sort = SPECS[1]
    first = CursorParams(limit=10, key=KEY).window(sort).paginate(rows)
    boundary_id = first.items[-1]["id"]
    rows[:] = [r for r in rows if r["id"] != boundary_id]
    second = CursorParams(cursor=first.next_cursor, limit=10, key=KEY).window(sort).paginate(rows)
    assert second.items == sort.sorted(rows)[9:19]
    back = CursorParams(cursor=second.prev_cursor, limit=10, key=KEY).window(sort).paginate(rows)
    assert back.items == sort.sorted(rows)[:9]
