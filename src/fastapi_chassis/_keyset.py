"""Sort specs and keyset comparisons, in Python and as a description an SQL layer can render.

Ordering rule shared by every helper here: `None` sorts before every other value, so it comes
first in an ascending key and last in a descending one (SQLite's and MySQL's default; PostgreSQL
needs `NULLS FIRST` on ascending and `NULLS LAST` on descending keys, see `order_by_sql`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any, Literal, TypeVar

from fastapi_chassis._cursor import Direction
from fastapi_chassis.errors import ConfigurationError

__all__ = ["KeysetCondition", "KeysetTerm", "SortKey", "SortSpec", "keyset_condition"]

T = TypeVar("T")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class SortKey:
    """One column of a sort order.

    `unique` marks the tie-breaker (a primary key): the last key of every `SortSpec` must be one.
    `nullable` makes the SQL rendering include `NULL` rows on the "smaller" side of a key.
    """

    name: str
    descending: bool = False
    unique: bool = False
    nullable: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ConfigurationError(
                f"sort key name {self.name!r} is not an identifier (letters, digits, _ and "
                "dots between parts); it is also the column name the SQL helpers write"
            )
        if self.unique and self.nullable:
            raise ConfigurationError(
                f"sort key {self.name!r} cannot be unique and nullable: SQL allows many NULLs "
                "in a unique column, so it cannot break ties"
            )


def _cmp(a: Any, b: Any) -> int:
    if a is None or b is None:
        return (a is not None) - (b is not None)
    return int(a > b) - int(a < b)


class SortSpec:
    """A total order over rows: sort keys, the last one unique.

    `SortSpec("-created_at", SortKey("id", unique=True))` orders by `created_at` descending,
    ties broken by `id` ascending. Strings are shorthand for non-unique keys (`-` = descending).

    Raises:
        ConfigurationError: no keys, a repeated name, or the last key is not unique.
    """

    __slots__ = ("fingerprint", "keys")

    def __init__(self, *keys: SortKey | str) -> None:
        parsed = tuple(k if isinstance(k, SortKey) else _parse_key(k) for k in keys)
        if not parsed:
            raise ConfigurationError("a sort spec needs at least one key")
        names = [k.name for k in parsed]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"sort spec repeats a key: {', '.join(names)}")
        if not parsed[-1].unique:
            raise ConfigurationError(
                f"sort spec ({', '.join(names)}) must end with a unique tie-breaker, e.g. "
                "SortKey('id', unique=True); without one, rows sharing sort values are skipped "
                "or repeated between pages"
            )
        if any(k.unique for k in parsed[:-1]):
            raise ConfigurationError(
                "only the last key of a sort spec may be unique: keys after a unique key "
                "never decide anything"
            )
        self.keys: tuple[SortKey, ...] = parsed
        #: Canonical text of the order; cursors are bound to it.
        self.fingerprint = ",".join(
            ("-" if k.descending else "+") + k.name + ("!" if k.unique else "") for k in parsed
        )

    def __repr__(self) -> str:
        return f"SortSpec({self.fingerprint!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SortSpec) and other.keys == self.keys

    def __hash__(self) -> int:
        return hash(self.keys)

    def values(self, row: Any) -> tuple[Any, ...]:
        """Sort-key values of `row`: `row[name]` for mappings and `sqlite3.Row`, else attributes."""
        if hasattr(row, "keys") and hasattr(row, "__getitem__"):
            return tuple(row[k.name] for k in self.keys)
        return tuple(getattr(row, k.name) for k in self.keys)

    def compare(self, a: Sequence[Any], b: Sequence[Any]) -> int:
        """-1, 0 or 1: whether key values `a` come before, with, or after `b` in this order."""
        for key, x, y in zip(self.keys, a, b, strict=True):
            result = _cmp(x, y)
            if result:
                return -result if key.descending else result
        return 0

    def sorted(self, rows: Iterable[T]) -> list[T]:
        """`rows` in this order (a new list)."""
        values = self.values
        compare = self.compare
        return sorted(rows, key=cmp_to_key(lambda r1, r2: compare(values(r1), values(r2))))

    def order_by_sql(
        self,
        *,
        reverse: bool = False,
        nulls: bool = False,
        quote: Callable[[str], str] | None = None,
    ) -> str:
        """The `ORDER BY` list for this order (`reverse` for backward pages).

        `nulls=True` spells out the `NULL` placement (`NULLS FIRST`/`LAST`) for databases whose
        default differs from "NULL is smallest", such as PostgreSQL.
        """
        q = quote or quote_identifier
        parts = []
        for key in self.keys:
            descending = key.descending != reverse
            part = f"{q(key.name)} {'DESC' if descending else 'ASC'}"
            if nulls:
                part += " NULLS LAST" if descending else " NULLS FIRST"
            parts.append(part)
        return ", ".join(parts)


def _parse_key(text: str) -> SortKey:
    if text.startswith("-"):
        return SortKey(text[1:], descending=True)
    return SortKey(text.removeprefix("+"))


def quote_identifier(name: str) -> str:
    """`"name"`, or `"table"."column"` for a dotted name (standard SQL quoting)."""
    return ".".join(f'"{part}"' for part in name.split("."))


@dataclass(frozen=True)
class KeysetTerm:
    """`equal` keys equal to their values AND `key <op> value` — one branch of the comparison."""

    equal: tuple[tuple[SortKey, Any], ...]
    key: SortKey
    op: Literal["<", ">"]
    value: Any


@dataclass(frozen=True)
class KeysetCondition:
    """Rows strictly past a boundary row in the direction of travel: an OR of `terms`.

    For keys `(a DESC, id ASC)` going forward past `(a0, id0)` the terms read
    `a < a0` OR (`a = a0` AND `id > id0`). Render it with `sql()` or walk `terms` to build the
    expression in your query builder; either way, also AND in the first key's inclusive bound
    (`a <= a0`), which lets the database seek the index instead of scanning it.
    """

    terms: tuple[KeysetTerm, ...]

    def sql(self, *, quote: Callable[[str], str] | None = None) -> tuple[str, list[Any]]:
        """A `WHERE` fragment with `?` placeholders, and its parameters in order."""
        q = quote or quote_identifier
        branches: list[str] = []
        params: list[Any] = []
        for term in self.terms:
            compare = _compare_sql(q(term.key.name), term.op, term.value, term.key.nullable)
            if compare is None:
                continue
            parts: list[str] = []
            for key, value in term.equal:
                if value is None:
                    parts.append(f"{q(key.name)} IS NULL")
                else:
                    parts.append(f"{q(key.name)} = ?")
                    params.append(value)
            parts.append(compare[0])
            params.extend(compare[1])
            branches.append("(" + " AND ".join(parts) + ")")
        if not branches:
            return "1 = 0", []
        where = "(" + " OR ".join(branches) + ")"
        bound = self._leading_bound(q)
        if bound is None:
            return where, params
        return f"{bound[0]} AND {where}", bound[1] + params

    def _leading_bound(self, q: Callable[[str], str]) -> tuple[str, list[Any]] | None:
        # The first key's comparison, repeated inclusively outside the OR: a plain range the
        # planner can seek an index with. Without it SQLite and others scan from the start.
        first = self.terms[0]
        if first.value is None:
            return None
        column = q(first.key.name)
        op = ">=" if first.op == ">" else "<="
        if op == "<=" and first.key.nullable:
            return f"({column} <= ? OR {column} IS NULL)", [first.value]
        return f"{column} {op} ?", [first.value]


def _compare_sql(column: str, op: str, value: Any, nullable: bool) -> tuple[str, list[Any]] | None:
    # NULL is the smallest value: nothing is below it, every non-NULL is above it.
    if value is None:
        return (f"{column} IS NOT NULL", []) if op == ">" else None
    if op == "<" and nullable:
        return f"({column} < ? OR {column} IS NULL)", [value]
    return f"{column} {op} ?", [value]


def keyset_condition(
    spec: SortSpec, values: Sequence[Any], direction: Direction
) -> KeysetCondition:
    """The condition selecting rows after (or before) the row whose sort values are `values`."""
    terms = []
    for index, key in enumerate(spec.keys):
        forward = key.descending == (direction == "before")
        equal = tuple(zip(spec.keys[:index], values[:index], strict=True))
        terms.append(KeysetTerm(equal, key, ">" if forward else "<", values[index]))
    return KeysetCondition(tuple(terms))
