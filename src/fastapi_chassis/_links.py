"""RFC 8288 `Link` header values built from the request URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from fastapi_chassis._pages import CursorPage, Page

# Characters left alone when re-quoting a URL: reserved delimiters and `%` (already encoded).
# Everything else — `<`, `>`, `"`, spaces, control characters — is percent-encoded, so a request
# path cannot break out of the `<...>` or inject a header line.
_SAFE = "!#$%&'()*+,/:;=?@[]~"


def link_url(url: URL, set_params: Mapping[str, str], drop: tuple[str, ...] = ()) -> str:
    """`url` with `set_params` replaced and `drop` removed, every other parameter kept in order."""
    if drop:
        url = url.remove_query_params(drop)
    if set_params:
        url = url.include_query_params(**set_params)
    return quote(str(url), safe=_SAFE)


def link_value(links: Mapping[str, str]) -> str:
    """`<url>; rel="name"` entries joined with `, ` (relation order as given)."""
    return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items())


@dataclass(frozen=True)
class LinkTarget:
    """Where a page's Link header goes: the request URL and the response being built."""

    url: URL
    response: Response

    def write(self, page: Page[Any] | CursorPage[Any]) -> None:
        set_link_header(self.response, self.url, page)


def set_link_header(
    response: Response, url: URL | Request, page: Page[Any] | CursorPage[Any]
) -> None:
    """Add an RFC 8288 `Link` header (first, prev, next, last where known) for `page`.

    Links are `url` (the request's, by default) with `page` or `cursor` replaced and every
    other query parameter kept.
    """
    from fastapi_chassis._pages import Page  # the page models build on this module

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
