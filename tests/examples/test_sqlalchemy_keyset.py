from __future__ import annotations

from tests.examples._run import last_line, run_python

WALK = """
    from fastapi.testclient import TestClient
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from examples.sqlalchemy_keyset import Note, app, engine

    ORDER = {
        "newest": (Note.created.desc(), Note.id),
        "due": (Note.due, Note.id),  # SQLite puts NULL first ascending, as the chassis does
    }
    with Session(engine) as db:
        expected = {s: list(db.scalars(select(Note.id).order_by(*o))) for s, o in ORDER.items()}
        notes = list(db.scalars(select(Note)))
    # Many rows share each sort value, and `due` has NULLs: the tie-breaker decides.
    assert len({n.created for n in notes}) <= 16 and len({n.due for n in notes}) == 4

    with TestClient(app) as client:
        for sort, want in expected.items():
            for limit in (1, 4, 7, 60, 100):
                forward, cursor, pages = [], None, []
                while True:
                    params = {"sort": sort, "limit": limit}
                    if cursor:
                        params["cursor"] = cursor
                    body = client.get("/notes", params=params).json()
                    pages.append(body)
                    forward += [n["id"] for n in body["items"]]
                    cursor = body["next_cursor"]
                    if cursor is None:
                        break
                assert forward == want, (sort, limit, forward)
                backward, cursor = [n["id"] for n in pages[-1]["items"]], pages[-1]["prev_cursor"]
                while cursor:
                    params = {"sort": sort, "limit": limit, "cursor": cursor}
                    body = client.get("/notes", params=params).json()
                    assert len(body["items"]) == limit, (sort, limit, body)
                    backward = [n["id"] for n in body["items"]] + backward
                    cursor = body["prev_cursor"]
                assert backward == want, (sort, limit, backward)
        newest = client.get("/notes", params={"sort": "newest", "limit": 5}).json()["next_cursor"]
        other = client.get("/notes", params={"sort": "due", "cursor": newest})
        assert other.status_code == 400, other.text
    print("walked", sum(len(v) for v in expected.values()))
"""


def test_sqlalchemy_pages_walked_both_ways_equal_order_by_of_the_full_table() -> None:
    assert last_line(run_python(WALK)) == "walked 120"


PLAN = """
    from sqlalchemy.orm import Session
    from fastapi_chassis import CursorParams
    from examples.sqlalchemy_keyset import SORTS, engine, keyset_select

    def window(cursor):
        params = CursorParams(cursor, limit=3, key=b"k" * 32)
        return params.window(SORTS["newest"], query={"sort": "newest"})

    first = window(None)
    with Session(engine) as db:
        cursor = first.page(list(db.scalars(keyset_select(first)))).next_cursor
    compiled = keyset_select(window(cursor)).compile(engine)
    args = tuple(compiled.params[name] for name in compiled.positiontup)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), args).fetchall()
    print(" | ".join(str(row[-1]) for row in plan))
"""


def test_keyset_query_seeks_the_sort_index_instead_of_scanning() -> None:
    plan = last_line(run_python(PLAN))
    assert "INDEX notes_newest" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort step: rows come out in index order
