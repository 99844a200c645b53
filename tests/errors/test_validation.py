from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Cookie, FastAPI, Header, Path, Query
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, field_validator

from fastapi_chassis import ChassisSettings, ErrorsSettings, ProblemDetail
from tests.errors.problems import assert_problem

MakeApp = Callable[..., FastAPI]
MARKER = "SUBMITTED-abc123"


class Line(BaseModel):
    sku: str = Field(min_length=1, max_length=12)
    qty: int = Field(ge=1)


class Order(BaseModel):
    lines: list[Line]
    notes: dict[str, int] = Field(default_factory=dict)
    password: str = ""

    @field_validator("password")
    @classmethod
    def strong(cls, value: str) -> str:
        if value and len(value) < 12:
            raise ValueError(f"{value!r} is too short")  # a careless message that echoes input
        return value


def order_app(make_app: MakeApp, app_settings: ChassisSettings | None = None) -> FastAPI:
    app = make_app(app_settings)

    @app.post("/shops/{shop_id}/orders")
    async def create_order(
        shop_id: Annotated[int, Path()],
        order: Order,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        tag: Annotated[list[int] | None, Query()] = None,
        x_tenant: Annotated[int | None, Header()] = None,
        session: Annotated[int | None, Cookie()] = None,
    ) -> dict[str, int]:
        return {"shop": shop_id, "lines": len(order.lines)}

    return app


def errors_by_loc(body: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {item["loc"]: item for item in body["errors"]}


def test_locations_are_json_pointers_across_path_query_header_cookie_and_body(
    make_app: MakeApp,
) -> None:
    with TestClient(order_app(make_app)) as client:
        client.cookies.set("session", MARKER)
        response = client.post(
            f"/shops/{MARKER}/orders",
            params=[("limit", MARKER), ("tag", "1"), ("tag", MARKER)],
            headers={"X-Tenant": MARKER},
            json={"lines": [{"sku": "A1", "qty": 2}, {"sku": "", "qty": MARKER}]},
        )
    body = assert_problem(response, 422, "validation_failed")
    errors = errors_by_loc(body)
    assert set(errors) == {
        "/path/shop_id",
        "/query/limit",
        "/query/tag/1",
        "/header/x-tenant",
        "/cookie/session",
        "/body/lines/1/sku",
        "/body/lines/1/qty",
    }
    assert errors["/body/lines/1/qty"]["type"] == "int_parsing"
    assert errors["/body/lines/1/sku"]["type"] == "string_too_short"
    assert all(set(item) == {"loc", "msg", "type"} for item in body["errors"])
    assert body["title"] == "Request validation failed"
    assert body["detail"] == "7 inputs are invalid; see `errors`."
    assert MARKER not in response.text


def test_missing_body_and_invalid_json_point_at_the_body(make_app: MakeApp) -> None:
    with TestClient(order_app(make_app)) as client:
        missing = client.post("/shops/1/orders")
        broken = client.post(
            "/shops/1/orders",
            content=b'{"lines": [' + MARKER.encode(),
            headers={"Content-Type": "application/json"},
        )
    assert errors_by_loc(assert_problem(missing, 422, "validation_failed"))["/body"]["type"] == (
        "missing"
    )
    broken_body = assert_problem(broken, 422, "validation_failed")
    assert [e["loc"] for e in broken_body["errors"]] == ["/body"]
    assert broken_body["errors"][0]["type"] == "json_invalid"
    assert MARKER not in broken.text


def test_messages_on_redacted_fields_are_generic(make_app: MakeApp) -> None:
    with TestClient(order_app(make_app)) as client:
        response = client.post("/shops/1/orders", json={"lines": [], "password": MARKER[:8]})
    errors = errors_by_loc(assert_problem(response, 422, "validation_failed"))
    assert errors["/body/password"] == {
        "loc": "/body/password",
        "msg": "Invalid value",
        "type": "value_error",
    }
    assert MARKER[:8] not in response.text


def test_redacted_fields_come_from_settings(make_app: MakeApp) -> None:
    app_settings = ChassisSettings(environment="test", errors=ErrorsSettings(redact_fields=["Sku"]))
    with TestClient(order_app(make_app, app_settings)) as client:
        response = client.post(
            "/shops/1/orders", json={"lines": [{"sku": "", "qty": 1}], "password": "short"}
        )
    errors = errors_by_loc(assert_problem(response, 422, "validation_failed"))
    assert errors["/body/lines/0/sku"]["msg"] == "Invalid value"
    # No longer redacted, so the careless validator's message (and input) shows.
    assert "'short' is too short" in errors["/body/password"]["msg"]


def test_dict_keys_in_locations_are_escaped_as_json_pointer(make_app: MakeApp) -> None:
    with TestClient(order_app(make_app)) as client:
        response = client.post("/shops/1/orders", json={"lines": [], "notes": {"a/b~c": "x"}})
    errors = errors_by_loc(assert_problem(response, 422, "validation_failed"))
    assert "/body/notes/a~1b~0c" in errors


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
order_like = st.fixed_dictionaries(
    {
        "lines": st.lists(
            st.fixed_dictionaries({"sku": st.text(max_size=14), "qty": json_values}), max_size=3
        ),
    },
    optional={
        "notes": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        "password": st.text(max_size=16),
    },
)
query_params = st.lists(
    st.tuples(
        st.sampled_from(["limit", "tag", "other"]) | st.text(max_size=8), st.text(max_size=12)
    ),
    max_size=5,
)


def test_arbitrary_bodies_and_queries_never_give_500(make_app: MakeApp) -> None:
    with TestClient(order_app(make_app)) as client:

        @settings(
            max_examples=80,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(body=json_values | order_like, params=query_params)
        def check(body: Any, params: list[tuple[str, str]]) -> None:
            response = client.post("/shops/7/orders", json=body, params=params)
            if response.status_code < 300:
                assert response.json()["shop"] == 7
                return
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            problem = ProblemDetail.model_validate(response.json())
            assert problem.status == 422
            assert problem.errors

        check()


def test_lone_surrogate_in_a_key_still_gives_a_422(make_app: MakeApp) -> None:
    with TestClient(order_app(make_app)) as client:
        response = client.post(
            "/shops/1/orders",
            content=b'{"lines": [], "notes": {"\\ud800": "x"}}',
            headers={"Content-Type": "application/json"},
        )
    body = assert_problem(response, 422, "validation_failed")
    assert [e["loc"].startswith("/body/notes/") for e in body["errors"]] == [True]
