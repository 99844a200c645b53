from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_chassis import (
    BadRequest,
    ChassisError,
    ChassisSettings,
    Conflict,
    ErrorsSettings,
    Forbidden,
    Gone,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
)
from tests.errors.problems import assert_problem

MakeApp = Callable[..., FastAPI]


class InsufficientFunds(ChassisError):
    status = 402
    code = "insufficient_funds"
    title = "Insufficient funds"


FAMILY = [
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    Gone,
    UnprocessableEntity,
    TooManyRequests,
    ServiceUnavailable,
]


@pytest.mark.parametrize("error", FAMILY, ids=lambda e: e.__name__)
def test_each_family_member_renders_its_status_code_and_title(
    make_app: MakeApp, error: type[ChassisError]
) -> None:
    app = make_app()

    @app.get("/fail")
    async def fail() -> None:
        raise error("it went wrong")

    with TestClient(app) as client:
        body = assert_problem(client.get("/fail"), error.status, error.code)
    assert body["title"] == error.title
    assert body["detail"] == "it went wrong"
    assert body["type"] == "about:blank"


def test_custom_subclass_carries_extra_members_and_headers(make_app: MakeApp) -> None:
    app = make_app()

    @app.post("/pay")
    async def pay() -> None:
        raise InsufficientFunds(
            "balance is 30.00, the payment needs 50.00",
            extra={"balance": Decimal("30.00"), "needed": 50, "status": 200},
            headers={"Retry-After": "60"},
        )

    with TestClient(app) as client:
        response = client.post("/pay")
    body = assert_problem(response, 402, "insufficient_funds")
    assert body["title"] == "Insufficient funds"
    assert body["balance"] == 30.0
    assert body["needed"] == 50
    # Extension members never replace standard ones.
    assert body["status"] == 402
    assert response.headers["retry-after"] == "60"


def test_constructor_arguments_override_class_defaults(make_app: MakeApp) -> None:
    app = make_app()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> None:
        raise NotFound(f"item {item_id} does not exist", code="item_not_found", title="No item")

    with TestClient(app) as client:
        body = assert_problem(client.get("/items/3"), 404, "item_not_found")
    assert body["title"] == "No item"
    assert body["detail"] == "item 3 does not exist"


def test_type_uri_comes_from_the_configured_base(make_app: MakeApp) -> None:
    settings = ChassisSettings(
        environment="test", errors=ErrorsSettings(type_base_url="https://errors.example.com/")
    )
    app = make_app(settings)

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict()

    with TestClient(app) as client:
        conflict_body = assert_problem(client.get("/conflict"), 409, "conflict")
        missing_body = assert_problem(client.get("/missing"), 404, "not_found")
    assert conflict_body["type"] == "https://errors.example.com/conflict"
    assert missing_body["type"] == "https://errors.example.com/not_found"


def test_http_exception_keeps_status_detail_and_www_authenticate(make_app: MakeApp) -> None:
    app = make_app()

    @app.get("/me")
    async def me() -> None:
        raise HTTPException(401, detail="token expired", headers={"WWW-Authenticate": "Bearer"})

    with TestClient(app) as client:
        response = client.get("/me")
    body = assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["title"] == "Unauthorized"
    assert body["detail"] == "token expired"


def test_starlette_http_exception_and_structured_detail(make_app: MakeApp) -> None:
    app = make_app()

    @app.get("/teapot")
    async def teapot() -> None:
        raise StarletteHTTPException(418)

    @app.get("/structured")
    async def structured() -> None:
        raise HTTPException(409, detail={"field": "email", "reason": "taken"})

    with TestClient(app) as client:
        teapot_body = assert_problem(client.get("/teapot"), 418, "http_418")
        structured_body = assert_problem(client.get("/structured"), 409, "conflict")
    assert "detail" not in teapot_body  # the bare reason phrase is already the title
    assert structured_body["context"] == {"field": "email", "reason": "taken"}
    assert "detail" not in structured_body


def test_http_exception_without_body_status_has_no_body(make_app: MakeApp) -> None:
    app = make_app()

    @app.get("/cached")
    async def cached() -> None:
        raise HTTPException(304, headers={"ETag": '"v1"'})

    with TestClient(app) as client:
        response = client.get("/cached")
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"v1"'


def test_unknown_route_is_a_404_problem(make_app: MakeApp) -> None:
    with TestClient(make_app()) as client:
        body = assert_problem(client.get("/no/such/route"), 404, "not_found")
    assert body["title"] == "Not Found"


def test_wrong_method_is_a_405_problem_that_keeps_allow(make_app: MakeApp) -> None:
    app = make_app()

    @app.api_route("/things", methods=["GET", "PUT"])
    async def things() -> list[str]:
        return []

    with TestClient(app) as client:
        response = client.delete("/things")
    assert_problem(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "PUT"}


class RaisesChassisError:
    """A user middleware that refuses requests itself, outside the router's handlers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/guarded":
            raise Forbidden("middleware said no", headers={"X-Reason": "policy"})
        await self.app(scope, receive, send)


def test_chassis_error_raised_by_middleware_gets_its_own_status(make_app: MakeApp) -> None:
    app = make_app(middleware=[Middleware(RaisesChassisError)])

    @app.get("/guarded")
    async def guarded() -> None:
        return None

    with TestClient(app) as client:
        response = client.get("/guarded")
    body = assert_problem(response, 403, "forbidden")
    assert body["detail"] == "middleware said no"
    assert response.headers["x-reason"] == "policy"


def test_subclass_with_a_non_error_status_is_refused_at_definition() -> None:
    with pytest.raises(TypeError, match="400-599"):

        class Fine(ChassisError):
            status = 200


def test_instance_with_a_non_error_status_is_refused() -> None:
    with pytest.raises(ValueError, match="400-599"):
        NotFound(status=302)


def test_type_base_url_must_be_an_absolute_uri() -> None:
    with pytest.raises(ValueError, match="not an absolute URI"):
        ErrorsSettings(type_base_url="errors.example.com/")
    assert ErrorsSettings(type_base_url="urn:example:errors").type_base_url == "urn:example:errors"


@pytest.mark.parametrize("base", ["errors.example.com/", "://x", "1http://x", "ht tp://x", "é://x"])
def test_type_base_url_without_a_valid_scheme_is_refused(base: str) -> None:
    with pytest.raises(ValueError, match="not an absolute URI"):
        ErrorsSettings(type_base_url=base)


class AnswersEarly:
    """Stands in for a chassis block that answers before the app (like the body limit)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from fastapi_chassis.errors import problem_body, problem_response

        if scope["type"] == "http" and scope["path"] == "/early":
            body = problem_body(413, title="Content Too Large", code="content_too_large")
            await problem_response(body)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def test_middleware_outside_the_boundary_build_the_same_type_uris(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi_chassis import app as app_module
    from fastapi_chassis.middleware._bounded import BoundedBodyLimitMiddleware

    settings = ChassisSettings(
        environment="test", errors=ErrorsSettings(type_base_url="https://errors.example.com")
    )
    # By default the boundary runs inside the core layer; unfused, inside the body limit's.
    monkeypatch.setattr(app_module, "fuse_body_limit", lambda chassis: None)
    app = make_app(settings)
    boundary_at = [m.cls for m in app.user_middleware].index(BoundedBodyLimitMiddleware)
    app.user_middleware.insert(boundary_at, Middleware(AnswersEarly))
    with TestClient(app) as client:
        body = assert_problem(client.get("/early"), 413, "content_too_large")
    assert body["type"] == "https://errors.example.com/content_too_large"
