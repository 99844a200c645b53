"""The cursor-pagination request and its keyset window: `CursorParams`, `KeysetWindow`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi_chassis._cursor import (
    Direction,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
    query_binding,
)
from fastapi_chassis._keyset import KeysetCondition, SortSpec, keyset_condition
from fastapi_chassis._links import LinkTarget
from fastapi_chassis._pages import CursorPage
from fastapi_chassis.errors import ChassisError

__all__ = ["CursorParams", "KeysetWindow"]

T = TypeVar("T")


@dataclass(frozen=True)
class CursorParams:
    """A cursor-pagination request: the opaque `cursor` (None on the first page) and `limit`.

    `key` signs and verifies cursors; the dependency supplies the app's key
    (see `cursor_signing_key`). Call `window(sort, query=...)` to decode the cursor.
    """

    cursor: str | None = None
    limit: int = 20
    key: bytes = field(default=b"", repr=False, kw_only=True)
    max_cursor_length: int = field(default=1024, kw_only=True)
    _link: LinkTarget | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit starts at 1 (got {self.limit})")
        if len(self.key) < 16:
            raise ValueError("CursorParams needs a signing key of at least 16 bytes")

    def window(self, sort: SortSpec, *, query: Any = None) -> KeysetWindow:
        """Decode the cursor for the listing ordered by `sort` and filtered as `query` says.

        `query` is any JSON-like value describing the filters (e.g. `{"tag": tag}`): a cursor is
        only accepted by a request with the same sort and the same `query`.

        Raises:
            InvalidCursor: (400) the cursor is not one this listing issued.
        """
        binding = query_binding(sort.fingerprint, query)
        direction: Direction | None = None
        values: tuple[Any, ...] | None = None
        if self.cursor:
            direction, values = decode_cursor(
                self.key, binding, self.cursor, self.max_cursor_length
            )
            if len(values) != len(sort.keys):
                raise InvalidCursor("the cursor does not match this listing's sort order")
        return KeysetWindow(self, sort, binding, direction, values)


class KeysetWindow:
    """The rows one cursor request asks for: the comparison, order and limit of its query.

    SQL: `WHERE <where_sql()> ORDER BY <order_by_sql()> LIMIT <fetch>`, then `page(rows)`.
    In memory: `paginate(rows)`.
    """

    def __init__(
        self,
        params: CursorParams,
        sort: SortSpec,
        binding: bytes,
        direction: Direction | None,
        values: tuple[Any, ...] | None,
    ) -> None:
        self.params = params
        self.sort = sort
        self._binding = binding
        #: "after" or "before" the boundary row; None on the first page.
        self.direction = direction
        #: Sort-key values of the boundary row; None on the first page.
        self.values = values
        self.limit = params.limit
        #: Rows to fetch: one more than `limit`, to learn whether another page follows.
        self.fetch = params.limit + 1

    @property
    def backward(self) -> bool:
        """True when paging towards the start: the query runs in reverse order."""
        return self.direction == "before"

    @property
    def condition(self) -> KeysetCondition | None:
        """The comparison past the boundary row, or None on the first page."""
        if self.direction is None or self.values is None:
            return None
        return keyset_condition(self.sort, self.values, self.direction)

    def where_sql(self, *, quote: Callable[[str], str] | None = None) -> tuple[str, list[Any]]:
        """`WHERE` fragment (`?` placeholders) and parameters; `1 = 1` on the first page."""
        condition = self.condition
        return ("1 = 1", []) if condition is None else condition.sql(quote=quote)

    def order_by_sql(
        self, *, nulls: bool = False, quote: Callable[[str], str] | None = None
    ) -> str:
        """`ORDER BY` list to fetch in (reversed when paging backward)."""
        return self.sort.order_by_sql(reverse=self.backward, nulls=nulls, quote=quote)

    def matches(self, row: Any) -> bool:
        """Whether `row` lies past the boundary in the direction of travel."""
        if self.direction is None or self.values is None:
            return True
        result = self.sort.compare(self.sort.values(row), self.values)
        return result < 0 if self.backward else result > 0

    def paginate(self, rows: Iterable[T]) -> CursorPage[T]:
        """This window of an in-memory sequence (sorted and filtered here)."""
        ordered = self.sort.sorted(r for r in rows if self.matches(r))
        if self.backward:
            ordered.reverse()
        return self.page(ordered[: self.fetch])

    def page(self, rows: Sequence[T]) -> CursorPage[T]:
        """The page from up to `fetch` rows read in `order_by_sql()` order; sets Link when on."""
        more = len(rows) > self.limit
        items = list(rows[: self.limit])
        if self.backward:
            items.reverse()
        next_cursor = prev_cursor = None
        if items:
            after_last = self.direction == "before" or more
            before_first = self.direction == "after" or (self.backward and more)
            if after_last:
                next_cursor = self._cursor("after", items[-1])
            if before_first:
                prev_cursor = self._cursor("before", items[0])
        page: CursorPage[T] = CursorPage(
            items=items, next_cursor=next_cursor, prev_cursor=prev_cursor
        )
        if self.params._link is not None:
            self.params._link.write(page)
        return page

    def _cursor(self, direction: Direction, row: Any) -> str:
        try:
            return encode_cursor(
                self.params.key,
                self._binding,
                direction,
                self.sort.values(row),
                self.params.max_cursor_length,
            )
        except ValueError as exc:
            raise ChassisError(str(exc), code="cursor_too_long") from None
