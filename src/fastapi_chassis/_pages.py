"""Page models and the offset-pagination request: `PageParams`, `Page[T]`, `CursorPage[T]`."""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from fastapi_chassis._links import LinkTarget

__all__ = ["CursorPage", "Page", "PageParams"]

T = TypeVar("T")
P = TypeVar("P", bound="Page[Any]")


@dataclass(frozen=True)
class PageParams:
    """A validated offset-pagination request: 1-based `page` and `size` items per page."""

    page: int = 1
    size: int = 20
    _link: LinkTarget | None = field(default=None, init=False, repr=False, compare=False)

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
    def create(cls: type[P], items: Sequence[Any], total: int, params: PageParams) -> P:
        """The page for `params` holding `items` out of `total`; sets the Link header when on."""
        page = cls(
            items=list(items),
            total=total,
            page=params.page,
            size=params.size,
            pages=-(-total // params.size),
        )
        if params._link is not None:
            params._link.write(page)
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
