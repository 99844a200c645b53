from __future__ import annotations

import base64
import secrets
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fastapi_chassis import (
    AuthSettings,
    ChassisSettings,
    CursorPage,
    CursorPagination,
    CursorParams,
    InvalidCursor,
    PaginationSettings,
    SortKey,
    SortSpec,
    build_app,
    cursor_signing_key,
)

KEY = b"k" * 32
SORT = SortSpec("-score", SortKey("id", unique=True))
ROWS = [{"id": i, "score": i % 3, "tag": "ab"[i % 2]} for i in range(1, 31)]


def make_app(settings: ChassisSettings | None = None) -> FastAPI:
    app = build_app(settings or ChassisSettings())

    @app.get("/rows")
    def rows(params: CursorPagination, tag: str | None = None) -> CursorPage[dict[str, Any]]:
        chosen = [r for r in ROWS if tag is None or r["tag"] == tag]
        return params.window(SORT, query={"tag": tag}).paginate(chosen)

    @app.get("/by-id")
    def by_id(params: CursorPagination) -> CursorPage[dict[str, Any]]:
        return params.window(SortSpec(SortKey("id", unique=True))).paginate(ROWS)

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


def next_cursor(client: TestClient, url: str = "/rows?limit=5") -> str:
    cursor = client.get(url).json()["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def assert_invalid_cursor(client: TestClient, cursor: str, url: str = "/rows") -> None:
    response = client.get(url, params={"cursor": cursor, "limit": 5})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_cursor"


def raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def token(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_valid_cursor_is_url_safe_and_unpadded(client: TestClient) -> None:
    cursor = next_cursor(client)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert client.get("/rows", params={"cursor": cursor, "limit": 5}).status_code == 200


def test_flipping_any_byte_is_rejected(client: TestClient) -> None:
    data = raw(next_cursor(client))
    for index in range(len(data)):
        flipped = bytearray(data)
        flipped[index] ^= 0x01
        assert_invalid_cursor(client, token(bytes(flipped)))


def test_truncated_cursors_are_rejected(client: TestClient) -> None:
    cursor = next_cursor(client)
    for cut in (1, 2, 5, 40, len(cursor) - 1):
        assert_invalid_cursor(client, cursor[:-cut])


@pytest.mark.parametrize(
    "cursor",
    [
        token(secrets.token_bytes(60)),
        token(b"\x01" + secrets.token_bytes(80)),
        "not base64!",
        "abc=",
        "A",
        "AAAA" * 2560,  # 10 KB
        "%00",
        "é",
    ],
)
def test_garbage_and_oversized_cursors_are_400(client: TestClient, cursor: str) -> None:
    assert_invalid_cursor(client, cursor)


def test_unknown_format_version_is_rejected(client: TestClient) -> None:
    data = bytearray(raw(next_cursor(client)))
    data[0] = 2
    response = client.get("/rows", params={"cursor": token(bytes(data))})
    assert response.status_code == 400
    assert "version" in response.json()["detail"]


def test_cursor_from_another_key_is_rejected() -> None:
    one = TestClient(make_app(_with_secret("a" * 40)))
    other = TestClient(make_app(_with_secret("b" * 40)))
    assert_invalid_cursor(other, next_cursor(one))


def test_cursor_from_another_listing_or_filter_is_rejected(client: TestClient) -> None:
    assert_invalid_cursor(client, next_cursor(client, "/by-id?limit=5"))
    cursor = next_cursor(client, "/rows?limit=5&tag=a")
    assert_invalid_cursor(client, cursor, "/rows?tag=b")
    assert client.get("/rows", params={"cursor": cursor, "tag": "a"}).status_code == 200


def test_cursor_from_another_sort_order_is_rejected() -> None:
    params = CursorParams(limit=2, key=KEY)
    cursor = params.window(SORT).paginate(ROWS).next_cursor
    flipped = SortSpec("score", SortKey("id", unique=True))
    with pytest.raises(InvalidCursor):
        CursorParams(cursor=cursor, limit=2, key=KEY).window(flipped)


def _with_secret(cursor: str | None = None, jwt: str | None = None) -> ChassisSettings:
    return ChassisSettings(
        pagination=PaginationSettings(cursor_secret=SecretStr(cursor) if cursor else None),
        auth=AuthSettings(jwt_secret=SecretStr(jwt) if jwt else None),
    )


def test_workers_sharing_a_secret_accept_each_others_cursors() -> None:
    for settings in (_with_secret("s" * 40), _with_secret(jwt="j" * 40)):
        one, two = TestClient(make_app(settings)), TestClient(make_app(settings))
        response = two.get("/rows", params={"cursor": next_cursor(one)})
        assert response.status_code == 200


def test_signing_key_prefers_cursor_secret_then_jwt_secret_and_never_equals_them() -> None:
    jwt_only = cursor_signing_key(_with_secret(jwt="j" * 40))
    both = cursor_signing_key(_with_secret("c" * 40, "j" * 40))
    neither = cursor_signing_key(ChassisSettings())
    assert len({jwt_only, both, neither}) == 3
    assert b"j" * 32 not in jwt_only
    assert cursor_signing_key(ChassisSettings()) == neither  # stable within a process


def test_empty_cursor_parameter_means_first_page(client: TestClient) -> None:
    assert client.get("/rows?cursor=").json() == client.get("/rows").json()


def test_repeated_cursor_parameter_is_422(client: TestClient) -> None:
    cursor = next_cursor(client)
    response = client.get("/rows", params=[("cursor", cursor), ("cursor", cursor)])
    assert response.status_code == 422
    assert "cursor was given 2 times" in response.text


@pytest.mark.parametrize("limit", ["0", "-1", "101", "x", "9" * 30])
def test_bad_limit_is_422(client: TestClient, limit: str) -> None:
    assert client.get("/rows", params={"limit": limit}).status_code == 422


TYPED_VALUES: list[Any] = [
    'text with ünïcode and "quotes"',
    -(2**70),
    0.1,
    float("-inf"),
    True,
    None,
    datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 1, 2, 3, 4, 5),
    date(2026, 2, 28),
    time(23, 59, 59, 1),
    UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("12345.678900"),
]


@pytest.mark.parametrize("value", TYPED_VALUES, ids=lambda v: type(v).__name__)
def test_cursor_values_round_trip_with_their_exact_type(value: Any) -> None:
    sort = SortSpec("v", SortKey("id", unique=True))
    rows = [{"v": value, "id": 1}, {"v": value, "id": 2}]
    cursor = CursorParams(limit=1, key=KEY).window(sort).paginate(rows).next_cursor
    decoded = CursorParams(cursor=cursor, limit=1, key=KEY).window(sort).values
    assert decoded == (value, 1)
    assert decoded is not None
    assert type(decoded[0]) is type(value)
    if isinstance(value, Decimal):
        assert str(decoded[0]) == str(value)


def test_unsupported_sort_value_type_fails_loudly_on_the_server() -> None:
    sort = SortSpec("v", SortKey("id", unique=True))
    rows = [{"v": (1, 2), "id": 1}, {"v": (1, 3), "id": 2}]
    with pytest.raises(TypeError, match="cannot go in a cursor"):
        CursorParams(limit=1, key=KEY).window(sort).paginate(rows)


def test_cursor_params_need_a_real_key() -> None:
    with pytest.raises(ValueError, match="signing key"):
        CursorParams(limit=1)
