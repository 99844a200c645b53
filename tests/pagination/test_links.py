from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from fastapi_chassis import (
    ChassisSettings,
    CursorPage,
    CursorPagination,
    CursorParams,
    Page,
    PageParams,
    Pagination,
    PaginationSettings,
    SortKey,
    SortSpec,
    build_app,
    cursor_pagination,
    pagination,
    set_link_header,
)

ROWS = [{"id": i} for i in range(1, 26)]
SORT = SortSpec(SortKey("id", unique=True))


def make_app(link_header: bool = False) -> FastAPI:
    app = build_app(ChassisSettings(pagination=PaginationSettings(link_header=link_header)))

    @app.get("/offset")
    def offset(params: Pagination) -> Page[dict[str, int]]:
        return Page.create(ROWS[params.offset : params.offset + params.limit], len(ROWS), params)

    @app.get("/offset-linked")
    def offset_linked(
        params: Annotated[PageParams, pagination(link_header=True)],
    ) -> Page[dict[str, int]]:
        return Page.create(ROWS[params.offset : params.offset + params.limit], len(ROWS), params)

    @app.get("/empty/{path:path}")
    def empty(params: Annotated[PageParams, pagination(link_header=True)]) -> Page[Any]:
        return Page.create([], 0, params)

    @app.get("/cursor")
    def cursor(
        params: Annotated[CursorParams, cursor_pagination(link_header=True)],
    ) -> CursorPage[dict[str, int]]:
        return params.window(SORT).paginate(ROWS)

    @app.get("/cursor-plain")
    def cursor_plain(params: CursorPagination) -> CursorPage[dict[str, int]]:
        return params.window(SORT).paginate(ROWS)

    @app.get("/manual")
    def manual(request: Request, response: Response) -> Page[dict[str, int]]:
        page = Page[dict[str, int]].create(ROWS[:5], len(ROWS), PageParams(page=1, size=5))
        set_link_header(response, request, page)
        return page

    return app


def links(response: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in response.headers["link"].split(", "):
        url, rel = part.split("; ")
        assert url.startswith("<")
        assert url.endswith(">")
        found[rel.removeprefix('rel="').removesuffix('"')] = url[1:-1]
    return found


def test_link_headers_are_off_unless_asked_for() -> None:
    client = TestClient(make_app())
    assert "link" not in client.get("/offset").headers
    assert "link" not in client.get("/cursor-plain").headers
    assert "link" in client.get("/offset-linked").headers


def test_settings_turn_link_headers_on_everywhere() -> None:
    client = TestClient(make_app(link_header=True))
    assert "link" in client.get("/offset").headers
    assert "link" in client.get("/cursor-plain").headers


def test_offset_links_keep_other_query_parameters() -> None:
    client = TestClient(make_app())
    response = client.get("/offset-linked?tag=a%20b&page=2&size=10&tag=c&q=x%26y")
    base = "http://testserver/offset-linked?tag=a+b&size=10&tag=c&q=x%26y"
    assert links(response) == {
        "first": base + "&page=1",
        "prev": base + "&page=1",
        "next": base + "&page=3",
        "last": base + "&page=3",
    }


def test_first_page_has_no_prev_and_last_page_has_no_next() -> None:
    client = TestClient(make_app())
    assert set(links(client.get("/offset-linked?size=10"))) == {"first", "next", "last"}
    assert set(links(client.get("/offset-linked?size=10&page=3"))) == {"first", "prev", "last"}


def test_page_past_the_end_points_prev_at_the_last_page() -> None:
    client = TestClient(make_app())
    found = links(client.get("/offset-linked?size=10&page=9"))
    assert found["prev"].endswith("page=3")
    assert "next" not in found


def test_empty_listing_links_first_and_last_to_page_one() -> None:
    client = TestClient(make_app())
    found = links(client.get("/empty/x"))
    assert found == {
        "first": "http://testserver/empty/x?page=1",
        "last": "http://testserver/empty/x?page=1",
    }


def test_hostile_path_characters_are_percent_encoded_in_links() -> None:
    client = TestClient(make_app())
    response = client.get("/empty/a%3E%22;%20rel=%22x%C3%A9")
    assert response.status_code == 200
    url = links(response)["first"]
    for char in '<>" é':
        assert char not in url
    assert url == "http://testserver/empty/a%3E%22;%20rel=%22x%C3%A9?page=1"


def test_cursor_links_follow_the_cursors_and_keep_parameters() -> None:
    client = TestClient(make_app())
    first = client.get("/cursor?limit=10&tag=a")
    found = links(first)
    assert set(found) == {"first", "next"}
    assert found["first"] == "http://testserver/cursor?limit=10&tag=a"
    assert found["next"] == (
        f"http://testserver/cursor?limit=10&tag=a&cursor={first.json()['next_cursor']}"
    )
    second = client.get(found["next"])
    assert second.json()["items"][0] == {"id": 11}
    found = links(second)
    assert set(found) == {"first", "prev", "next"}
    assert found["first"] == "http://testserver/cursor?limit=10&tag=a"
    assert client.get(found["prev"]).json()["items"][0] == {"id": 1}


def test_set_link_header_works_without_the_dependency() -> None:
    client = TestClient(make_app())
    assert set(links(client.get("/manual?x=1"))) == {"first", "next", "last"}


@pytest.mark.parametrize("page", [1, 2, 3])
def test_following_next_links_visits_every_page(page: int) -> None:
    client = TestClient(make_app())
    url = f"http://testserver/offset-linked?size=10&page={page}"
    seen: list[int] = []
    while True:
        response = client.get(url)
        seen.extend(r["id"] for r in response.json()["items"])
        found = links(response)
        if "next" not in found:
            break
        url = found["next"]
    assert seen == list(range((page - 1) * 10 + 1, 26))
