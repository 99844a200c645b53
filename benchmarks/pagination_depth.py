"""Cost of one page at increasing depth: OFFSET vs keyset cursor, SQLite, 1,000,000 rows.

    PYTHONPATH=src python -m benchmarks.pagination_depth [--rows N] [--size N] [--repeat N]

The database is built once in the temp directory (a few seconds) and reused. "Depth" is the
page number at `--size` rows per page; the cursor timing includes verifying and decoding the
cursor and encoding the next one, i.e. the library's whole per-request share.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from fastapi_chassis import CursorParams, Page, PageParams, SortKey, SortSpec

KEY = b"benchmark-key-of-32-bytes-length"
SORT = SortSpec("-created", SortKey("id", unique=True))
DEPTHS = (10, 1_000, 100_000)


def open_database(rows: int) -> sqlite3.Connection:
    path = os.path.join(tempfile.gettempdir(), f"chassis-pagination-{rows}.sqlite3")
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        if db.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == rows:
            return db
    except sqlite3.OperationalError:
        pass
    db.close()
    if os.path.exists(path):
        os.remove(path)
    print(f"building {rows:,} rows in {path} ...")
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, created INTEGER NOT NULL, body TEXT NOT NULL)"
    )
    with db:
        db.executemany(
            "INSERT INTO notes VALUES (?, ?, ?)",
            # Five notes share each timestamp: the tie-breaker does real work.
            ((i, 1_700_000_000 + i // 5, f"note number {i}") for i in range(1, rows + 1)),
        )
    db.execute(f"CREATE INDEX notes_newest ON notes ({SORT.order_by_sql()})")
    db.execute("ANALYZE")
    print(f"built in {time.perf_counter() - started:.1f} s")
    return db


def offset_page(db: sqlite3.Connection, params: PageParams, total: int) -> Page[dict[str, Any]]:
    rows = db.execute(
        f"SELECT * FROM notes ORDER BY {SORT.order_by_sql()} LIMIT ? OFFSET ?",
        [params.limit, params.offset],
    )
    return Page.create([dict(r) for r in rows], total, params)


def cursor_page(db: sqlite3.Connection, cursor: str, size: int) -> list[dict[str, Any]]:
    window = CursorParams(cursor=cursor, limit=size, key=KEY).window(SORT)
    where, args = window.where_sql()
    rows = db.execute(
        f"SELECT * FROM notes WHERE {where} ORDER BY {window.order_by_sql()} LIMIT ?",
        [*args, window.fetch],
    )
    return window.page([dict(r) for r in rows]).items


def cursor_for_page(db: sqlite3.Connection, page: int, size: int) -> str:
    """The `next_cursor` a client holds after reading page `page - 1` (setup, not timed)."""
    boundary = db.execute(
        f"SELECT * FROM notes ORDER BY {SORT.order_by_sql()} LIMIT 2 OFFSET ?",
        [(page - 1) * size - 1],
    ).fetchall()
    first = CursorParams(limit=1, key=KEY).window(SORT).page([dict(r) for r in boundary])
    assert first.next_cursor is not None
    return first.next_cursor


def median_ms(run: Callable[[], object], repeat: int) -> float:
    run()  # warm the page cache
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    db = open_database(args.rows)
    total_ms = median_ms(lambda: db.execute("SELECT COUNT(*) FROM notes").fetchone(), 5)

    print(f"\n{args.rows:,} rows, {args.size} per page, median of {args.repeat} runs\n")
    print("| depth (page) | rows skipped by OFFSET | offset ms/page | cursor ms/page | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for depth in DEPTHS:
        if (depth - 1) * args.size >= args.rows:
            continue
        params = PageParams(page=depth, size=args.size)
        cursor = cursor_for_page(db, depth, args.size)
        assert cursor_page(db, cursor, args.size) == offset_page(db, params, args.rows).items
        offset_ms = median_ms(lambda p=params: offset_page(db, p, args.rows), args.repeat)
        keyset_ms = median_ms(lambda c=cursor: cursor_page(db, c, args.size), args.repeat)
        print(
            f"| {depth:,} | {params.offset:,} | {offset_ms:.3f} | {keyset_ms:.3f} "
            f"| {offset_ms / keyset_ms:.1f}x |"
        )
    print(f"\n`SELECT COUNT(*)` for offset pages' `total`: {total_ms:.1f} ms (not in the table).")


if __name__ == "__main__":
    main()
