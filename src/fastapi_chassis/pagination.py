"""Offset and cursor (keyset) pagination: dependencies, page models, signed cursors, Link headers.

Storage-agnostic: the dependencies validate and decode what the client sent, your handler runs
its own query, and `Page.create` / `KeysetWindow.page` shape the answer.

    @app.get("/notes")
    async def list_notes(params: Pagination) -> Page[Note]:
        return Page.create(load(params.offset, params.limit), count(), params)
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.datastructures import URL
from typing_extensions import Self

from fastapi_chassis._cursor import (
    Direction,
    InvalidCursor,
    decode_cursor,
    derive_cursor_key,
    encode_cursor,
    process_cursor_key,
    query_binding,
)
from fastapi_chassis._keyset import (
    KeysetCondition,
    KeysetTerm,
    SortKey,
    SortSpec,
    keyset_condition,
)
from fastapi_chassis._links import link_url, link_value
from fastapi_chassis.app import get_settings
from fastapi_chassis.errors import ChassisError, ConfigurationError
from fastapi_chassis.settings import ChassisSettings, PaginationSettings

__all__ = [
    "CursorPage",
    "CursorPagination",
    "CursorParams",
    "InvalidCursor",
    "KeysetCondition",
    "KeysetTerm",
    "KeysetWindow",
    "Page",
    "PageParams",
    "Pagination",
    "SortKey",
    "SortSpec",
    "cursor_pagination",
    "cursor_signing_key",
    "pagination",
    "set_link_header",
]

T = TypeVar("T")


@dataclass(frozen=True)
class _LinkTarget:
    url: URL
    response: Response


@dataclass(frozen=True)
class PageParams:
    """A validated offset-pagination request: 1-based `page` and `size` items per page."""

    page: int = 1
    size: int = 20
    _link: _LinkTarget | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.page < 1 or self.size < 1:
            raise ValueError(f"page and size start at 1 (got page={self.page}, size={self.size})")

    @property
    def offset(self) -> int:
        """Rows to skip: `(page - 1) * size`."""
        return (self.page - 1) * self.size

    @property
    def limit(self) -> int:
        """Rows to fetch: `size`."""
        return self.size


def _type_label(tp: Any) -> str:
    args = getattr(tp, "__args__", None)
    origin = getattr(tp, "__origin__", None)
    if origin is not None and args:
        return _type_label(origin) + "".join(_type_label(a) for a in args)
    name = getattr(tp, "__name__", None) or str(tp)
    return "".join(part[:1].upper() + part[1:] for part in name.replace("|", " ").split())


def _readably_named(model: Any) -> Any:
    # pydantic names the schema of `Page[Note]` after the generic origin ("Page_Note_"). A plain
    # subclass named "PageNote" gives OpenAPI a readable, stable component name on every version.
    metadata = model.__pydantic_generic_metadata__
    if metadata["origin"] is None or metadata["parameters"]:
        return model
    named = _NAMED.get(model)
    if named is None:
        named = types.new_class(
            model.__name__,
            (model,),
            exec_body=lambda ns: ns.update(
                {"__module__": model.__module__, "__qualname__": model.__name__}
            ),
        )
        _NAMED[model] = named
    return named


_NAMED: dict[Any, Any] = {}


class Page(BaseModel, Generic[T]):
    """One page of an offset-paginated listing. `Page[Note]` appears as `PageNote` in OpenAPI."""

    items: list[T] = Field(description="The items of this page.")
    total: int = Field(ge=0, description="Items in the whole listing.")
    page: int = Field(ge=1, description="This page's number, from 1.")
    size: int = Field(ge=1, description="Items per page.")
    pages: int = Field(ge=0, description="Number of pages; 0 when the listing is empty.")

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        return cls.__name__ + "".join(_type_label(p) for p in params)

    def __class_getitem__(cls, params: Any) -> Any:
        return _readably_named(super().__class_getitem__(params))

    @classmethod
    def create(cls, items: Sequence[T], total: int, params: PageParams) -> Self:
        """The page for `params` holding `items` out of `total`; sets the Link header when on."""
        page = cls(
            items=list(items),
            total=total,
            page=params.page,
            size=params.size,
            pages=math.ceil(total / params.size) if total > 0 else 0,
        )
        if params._link is not None:
            set_link_header(params._link.response, params._link.url, page)
        return page


class CursorPage(BaseModel, Generic[T]):
    """One page of a cursor-paginated listing. `CursorPage[Note]` is `CursorPageNote` in OpenAPI."""

    items: list[T] = Field(description="The items of this page.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the following page; null on the last."
    )
    prev_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the preceding page; null on the first."
    )

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        return cls.__name__ + "".join(_type_label(p) for p in params)

    def __class_getitem__(cls, params: Any) -> Any:
        return _readably_named(super().__class_getitem__(params))


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
    _link: _LinkTarget | None = field(default=None, init=False, repr=False, compare=False)

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
        ordered = [r for r in self.sort.sorted(rows) if self.matches(r)]
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
            set_link_header(self.params._link.response, self.params._link.url, page)
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


def set_link_header(
    response: Response, url: URL | Request, page: Page[Any] | CursorPage[Any]
) -> None:
    """Add an RFC 8288 `Link` header (first, prev, next, last where known) for `page`.

    Links are `url` (the request's, by default) with `page` or `cursor` replaced and every
    other query parameter kept.
    """
    base = url.url if isinstance(url, Request) else url
    links: dict[str, str] = {}
    if isinstance(page, Page):
        last = max(page.pages, 1)
        links["first"] = link_url(base, {"page": "1"})
        if page.page > 1:
            links["prev"] = link_url(base, {"page": str(min(page.page - 1, last))})
        if page.page < page.pages:
            links["next"] = link_url(base, {"page": str(page.page + 1)})
        links["last"] = link_url(base, {"page": str(last)})
    else:
        links["first"] = link_url(base, {}, drop=("cursor",))
        if page.prev_cursor:
            links["prev"] = link_url(base, {"cursor": page.prev_cursor})
        if page.next_cursor:
            links["next"] = link_url(base, {"cursor": page.next_cursor})
    value = link_value(links)
    existing = response.headers.get("link")
    response.headers["link"] = f"{existing}, {value}" if existing else value


def cursor_signing_key(settings: ChassisSettings) -> bytes:
    """The key cursors are signed with, derived (HKDF-SHA256) from the first that is set:
    `pagination.cursor_secret`, then `auth.jwt_secret`; else a random key for this process.

    Every worker must derive the same key, or a cursor from one is refused by another.
    """
    for secret in (settings.pagination.cursor_secret, settings.auth.jwt_secret):
        if secret is not None and secret.get_secret_value():
            return derive_cursor_key(secret.get_secret_value().encode())
    return process_cursor_key()


def _invalid(name: str, kind: str, message: str, value: Any, **ctx: Any) -> RequestValidationError:
    error: dict[str, Any] = {"type": kind, "loc": ("query", name), "msg": message, "input": value}
    if ctx:
        error["ctx"] = ctx
    return RequestValidationError([error])


def _check_single(request: Request, names: tuple[str, ...]) -> None:
    for name in names:
        given = request.query_params.getlist(name)
        if len(given) > 1:
            raise _invalid(
                name,
                "repeated_parameter",
                f"{name} was given {len(given)} times; send it once",
                given,
            )


def _resolve_size(
    name: str, size: int | None, default: int | None, maximum: int | None, cfg: PaginationSettings
) -> int:
    limit = maximum if maximum is not None else cfg.max_size
    if size is None:
        size = default if default is not None else cfg.default_size
        if size > limit:
            raise ConfigurationError(
                f"default page size {size} exceeds the maximum {limit}; "
                f"lower it or raise CHASSIS_PAGINATION__MAX_SIZE"
            )
    elif size > limit:
        raise _invalid(
            name,
            "less_than_equal",
            f"Input should be less than or equal to {limit} (the largest page size)",
            size,
            le=limit,
        )
    return size


def _link_target(
    enabled: bool | None, cfg: PaginationSettings, request: Request, response: Response
) -> _LinkTarget | None:
    on = cfg.link_header if enabled is None else enabled
    return _LinkTarget(request.url, response) if on else None


def _build_signature(params: list[inspect.Parameter]) -> inspect.Signature:
    fixed = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("response", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Response),
        inspect.Parameter(
            "settings",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[ChassisSettings, Depends(get_settings)],
        ),
    ]
    return inspect.Signature(fixed + params)


def _query(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation, default=default
    )


def _check_factory(default_size: int | None, max_size: int | None) -> None:
    for label, value in (("default_size", default_size), ("max_size", max_size)):
        if value is not None and value < 1:
            raise ConfigurationError(f"{label} must be at least 1 (got {value})")
    if default_size is not None and max_size is not None and default_size > max_size:
        raise ConfigurationError(f"default_size {default_size} exceeds max_size {max_size}")


def _size_doc(noun: str, default_size: int | None, max_size: int | None) -> str:
    default = default_size if default_size is not None else "from settings"
    maximum = max_size if max_size is not None else "from settings"
    return f"{noun} per page (default {default}, maximum {maximum})."


def pagination(
    *,
    default_size: int | None = None,
    max_size: int | None = None,
    max_offset: int | None = None,
    link_header: bool | None = None,
) -> Any:
    """Offset-pagination dependency with per-route limits (unset ones come from settings).

    Use it as metadata: `params: Annotated[PageParams, pagination(max_size=500)]`. A limit given
    here is also published in OpenAPI. Out-of-range values get 422; never a silent clamp.

    Raises:
        ConfigurationError: `default_size` above `max_size`, or a limit below 1.
    """
    _check_factory(default_size, max_size)
    if max_offset is not None and max_offset < 0:
        raise ConfigurationError(f"max_offset must be 0 or more (got {max_offset})")

    def dependency(
        request: Request,
        response: Response,
        settings: ChassisSettings,
        page: int,
        size: int | None,
    ) -> PageParams:
        cfg = settings.pagination
        _check_single(request, ("page", "size"))
        size = _resolve_size("size", size, default_size, max_size, cfg)
        deepest = max_offset if max_offset is not None else cfg.max_offset
        if (page - 1) * size > deepest:
            raise _invalid(
                "page",
                "less_than_equal",
                f"page {page} of size {size} starts past row {deepest}, the deepest offset "
                "pagination reaches; use a filter or cursor pagination to go further",
                page,
                le=deepest // size + 1,
            )
        params = PageParams(page=page, size=size)
        object.__setattr__(params, "_link", _link_target(link_header, cfg, request, response))
        return params

    dependency.__signature__ = _build_signature(  # type: ignore[attr-defined]
        [
            _query("page", int, Query(1, ge=1, description="Page number, from 1.")),
            _query(
                "size",
                int | None,
                Query(
                    default_size,
                    ge=1,
                    le=max_size,
                    description=_size_doc("Items", default_size, max_size),
                ),
            ),
        ]
    )
    return Depends(dependency)


def cursor_pagination(
    *,
    default_size: int | None = None,
    max_size: int | None = None,
    link_header: bool | None = None,
) -> Any:
    """Cursor-pagination dependency with per-route limits (unset ones come from settings).

    Use it as metadata: `params: Annotated[CursorParams, cursor_pagination(max_size=500)]`.

    Raises:
        ConfigurationError: `default_size` above `max_size`, or a limit below 1.
    """
    _check_factory(default_size, max_size)

    def dependency(
        request: Request,
        response: Response,
        settings: ChassisSettings,
        cursor: str | None,
        limit: int | None,
    ) -> CursorParams:
        cfg = settings.pagination
        _check_single(request, ("cursor", "limit"))
        params = CursorParams(
            cursor=cursor or None,
            limit=_resolve_size("limit", limit, default_size, max_size, cfg),
            key=cursor_signing_key(settings),
            max_cursor_length=cfg.cursor_max_length,
        )
        object.__setattr__(params, "_link", _link_target(link_header, cfg, request, response))
        return params

    dependency.__signature__ = _build_signature(  # type: ignore[attr-defined]
        [
            _query(
                "cursor",
                str | None,
                Query(
                    None,
                    description="Opaque `next_cursor` or `prev_cursor` of a page; "
                    "omit for the first page.",
                ),
            ),
            _query(
                "limit",
                int | None,
                Query(
                    default_size,
                    ge=1,
                    le=max_size,
                    description=_size_doc("Items", default_size, max_size),
                ),
            ),
        ]
    )
    return Depends(dependency)


#: Offset pagination with the defaults and limits of `settings.pagination`.
Pagination = Annotated[PageParams, pagination()]
#: Cursor pagination with the defaults and limits of `settings.pagination`.
CursorPagination = Annotated[CursorParams, cursor_pagination()]
