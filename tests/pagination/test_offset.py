from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from fastapi_chassis import (
    ChassisSettings,
    ConfigurationError,
    Page,
    PageParams,
    Pagination,
    PaginationSettings,
    build_app,
    pagination,
)


class Note(BaseModel):
    id: int


NOTES = [Note(id=i) for i in range(1, 46)]


def make_app(**pagination_settings: int) -> FastAPI:
    app = build_app(ChassisSettings(pagination=PaginationSettings(**pagination_settings)))

    @app.get("/notes")
    def list_notes(params: Pagination) -> Page[Note]:
        return Page.create(NOTES[params.offset : params.offset + params.limit], len(NOTES), params)

    @app.get("/wide")
    def wide(
        params: Annotated[PageParams, pagination(default_size=5, max_size=200, max_offset=50)],
    ) -> Page[Note]:
        return Page.create(NOTES[params.offset : params.offset + params.limit], len(NOTES), params)

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app(default_size=10, max_size=20))


def test_defaults_come_from_settings(client: TestClient) -> None:
    body = client.get("/notes").json()
    assert (body["page"], body["size"], body["total"], body["pages"]) == (1, 10, 45, 5)
    assert [n["id"] for n in body["items"]] == list(range(1, 11))


def test_page_and_size_select_the_slice(client: TestClient) -> None:
    body = client.get("/notes?page=3&size=20").json()
    assert [n["id"] for n in body["items"]] == list(range(41, 46))
    assert body["pages"] == 3


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("page=0", "greater than or equal to 1"),
        ("page=-1", "greater than or equal to 1"),
        ("size=0", "greater than or equal to 1"),
        ("size=-5", "greater than or equal to 1"),
        ("size=21", "less than or equal to 20"),
        ("page=abc", "integer"),
        ("size=1.5", "integer"),
        ("page=" + "9" * 40, "deepest offset"),
        ("size=" + "9" * 40, "less than or equal to 20"),
        ("page=" + "9" * 5000, "integer"),
        ("page=1&page=2", "page was given 2 times"),
        ("size=5&size=5", "size was given 2 times"),
    ],
)
def test_out_of_range_values_are_422_naming_the_rule(
    client: TestClient, query: str, needle: str
) -> None:
    response = client.get(f"/notes?{query}")
    assert response.status_code == 422, response.text
    assert needle in response.text


def test_size_at_the_maximum_is_accepted_not_clamped(client: TestClient) -> None:
    assert client.get("/notes?size=20").json()["size"] == 20


def test_offset_deeper_than_max_offset_is_422() -> None:
    client = TestClient(make_app(max_offset=100, max_size=20))
    assert client.get("/notes?page=11&size=10").status_code == 200  # starts at row 100
    response = client.get("/notes?page=12&size=10")
    assert response.status_code == 422
    assert "past row 100" in response.text


def test_page_past_the_end_is_empty_not_an_error(client: TestClient) -> None:
    body = client.get("/notes?page=9").json()
    assert body["items"] == []
    assert body["pages"] == 5


def test_route_limits_override_settings_and_show_in_openapi(client: TestClient) -> None:
    assert client.get("/wide").json()["size"] == 5
    assert client.get("/wide?size=200").status_code == 200
    over = client.get("/wide?size=201")
    assert over.status_code == 422
    assert "less than or equal to 200" in over.text
    assert client.get("/wide?page=11&size=5").status_code == 200
    assert client.get("/wide?page=12&size=5").status_code == 422
    params = client.get("/openapi.json").json()["paths"]["/wide"]["get"]["parameters"]
    size = next(p for p in params if p["name"] == "size")
    assert "maximum" in str(size["schema"])
    assert "200" in str(size["schema"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"default_size": 50, "max_size": 10}, "exceeds max_size"),
        ({"max_size": 0}, "at least 1"),
        ({"default_size": 0}, "at least 1"),
        ({"max_offset": -1}, "0 or more"),
    ],
)
def test_impossible_route_limits_fail_at_definition(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        pagination(**kwargs)


def test_settings_refuse_default_above_max() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        PaginationSettings(default_size=50, max_size=10)


@pytest.mark.parametrize(
    ("total", "size", "pages"),
    [(0, 10, 0), (1, 10, 1), (9, 10, 1), (10, 10, 1), (11, 10, 2), (100, 1, 100), (7, 100, 1)],
)
def test_pages_is_total_divided_by_size_rounded_up(total: int, size: int, pages: int) -> None:
    page = Page[Note].create([], total, PageParams(page=1, size=size))
    assert page.pages == pages


def test_page_params_offset_and_limit() -> None:
    params = PageParams(page=4, size=25)
    assert (params.offset, params.limit) == (75, 25)
    with pytest.raises(ValueError, match="start at 1"):
        PageParams(page=0, size=10)


def test_generic_pages_have_readable_openapi_names(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "PageNote" in spec["components"]["schemas"]
    schema = spec["paths"]["/notes"]["get"]["responses"]["200"]["content"]["application/json"]
    assert schema["schema"]["$ref"] == "#/components/schemas/PageNote"
    assert Page[Note] is Page[Note]
    assert isinstance(Page[Note].create([], 0, PageParams()), Page)


def test_openapi_with_paginated_routes_is_a_valid_document() -> None:
    import openapi_spec_validator

    from fastapi_chassis.demo import create_app

    # 0.7.0, the lowest tested release, has only `validate_spec`; newer ones add `validate`.
    validate = getattr(openapi_spec_validator, "validate", None)
    if validate is None:
        validate = openapi_spec_validator.validate_spec

    for app in (make_app(), create_app(ChassisSettings())):
        validate(TestClient(app).get("/openapi.json").json())
