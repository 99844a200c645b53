"""Offset and cursor (keyset) pagination: dependencies, page models, signed cursors, Link headers.

Storage-agnostic: the dependencies validate and decode what the client sent, your handler runs
its own query, and `Page.create` / `KeysetWindow.page` shape the answer.

    @app.get("/notes")
    async def list_notes(params: Pagination) -> Page[Note]:
        return Page.create(load(params.offset, params.limit), count(), params)
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from fastapi_chassis._cursor import InvalidCursor, derive_cursor_key, process_cursor_key
from fastapi_chassis._keyset import KeysetCondition, KeysetTerm, SortKey, SortSpec
from fastapi_chassis._links import LinkTarget, set_link_header
from fastapi_chassis._pages import CursorPage, Page, PageParams
from fastapi_chassis._window import CursorParams, KeysetWindow
from fastapi_chassis.app import get_settings
from fastapi_chassis.errors import ConfigurationError
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
    name: str, size: int | None, default: int | None, maximum: int | None, settings: ChassisSettings
) -> int:
    cfg = settings.pagination
    limit = maximum if maximum is not None else cfg.max_size
    if size is None:
        size = default if default is not None else cfg.default_size
        if size > limit:
            raise ConfigurationError(
                f"the route's default page size {size} exceeds the maximum {limit}; lower "
                f"default_size or raise {settings.env_var('pagination', 'max_size')}"
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
) -> LinkTarget | None:
    on = cfg.link_header if enabled is None else enabled
    return LinkTarget(request.url, response) if on else None


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


def _size_query(name: str, default_size: int | None, max_size: int | None) -> inspect.Parameter:
    """The page-size query parameter (`size` or `limit`), with its limits in OpenAPI."""
    return _query(
        name,
        int,
        Query(
            default_size,
            ge=1,
            le=max_size,
            description=_size_doc("Items", default_size, max_size),
        ),
    )


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
        size = _resolve_size("size", size, default_size, max_size, settings)
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
            _size_query("size", default_size, max_size),
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
            limit=_resolve_size("limit", limit, default_size, max_size, settings),
            key=cursor_signing_key(settings),
            max_cursor_length=cfg.cursor_max_length,
        )
        object.__setattr__(params, "_link", _link_target(link_header, cfg, request, response))
        return params

    dependency.__signature__ = _build_signature(  # type: ignore[attr-defined]
        [
            _query(
                "cursor",
                str,
                Query(
                    None,
                    description="Opaque `next_cursor` or `prev_cursor` of a page; "
                    "omit for the first page.",
                ),
            ),
            _size_query("limit", default_size, max_size),
        ]
    )
    return Depends(dependency)


#: Offset pagination with the defaults and limits of `settings.pagination`.
Pagination = Annotated[PageParams, pagination()]
#: Cursor pagination with the defaults and limits of `settings.pagination`.
CursorPagination = Annotated[CursorParams, cursor_pagination()]
