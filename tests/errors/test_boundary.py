from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis import AuthSettings, ChassisSettings
from tests.errors.conftest import REQUEST_ID
from tests.errors.problems import assert_problem

MakeApp = Callable[..., FastAPI]
SECRET = "db password is hunter2"
STRONG = "Zx8-q2Lr7vNn4TtYp0aWc3Kd9Ue6Fh1JbGm5Si2Oo8Rl"


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info]


def assert_logged_once(caplog: pytest.LogCaptureFixture, exc_type: type[BaseException]) -> str:
    """Exactly one traceback in the whole log, ours, carrying the request id."""
    [record] = tracebacks(caplog)
    assert record.name == "fastapi_chassis.errors"
    assert record.exc_info is not None
    assert record.exc_info[0] is exc_type
    message = record.getMessage()
    assert f"request_id={REQUEST_ID}" in message
    return message


def crashing_app(make_app: MakeApp, settings: ChassisSettings | None = None) -> FastAPI:
    app = make_app(settings)

    @app.get("/crash")
    async def crash() -> None:
        raise ValueError(SECRET)

    return app


def test_unhandled_exception_is_a_decorated_500_logged_once(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(crashing_app(make_app)) as client:
        response = client.get("/crash?token=abc")
    body = assert_problem(response, 500, "internal_error")
    assert body["title"] == "Internal Server Error"
    assert body["detail"] == (
        "The server could not complete the request. Quote the request id when reporting it."
    )
    message = assert_logged_once(caplog, ValueError)
    assert "GET /crash" in message
    assert "token=abc" not in message  # query strings may carry secrets


def test_prod_hides_the_exception_text_class_and_stack(make_app: MakeApp) -> None:
    prod = ChassisSettings(environment="prod", auth=AuthSettings(jwt_secret=SecretStr(STRONG)))
    with TestClient(crashing_app(make_app, prod)) as client:
        response = client.get("/crash")
    assert_problem(response, 500, "internal_error")
    for leak in ("hunter2", "ValueError", "Traceback", "test_boundary"):
        assert leak not in response.text


def test_debug_in_dev_shows_the_exception(make_app: MakeApp) -> None:
    dev = ChassisSettings(environment="dev", debug=True)
    with TestClient(crashing_app(make_app, dev)) as client:
        response = client.get("/crash")
    body = assert_problem(response, 500, "internal_error")
    assert body["detail"] == f"ValueError: {SECRET}"
    assert body["exception"]["type"] == "builtins.ValueError"
    assert body["exception"]["message"] == SECRET
    assert any("raise ValueError(SECRET)" in line for line in body["exception"]["traceback"])


def test_debug_off_in_dev_hides_the_exception(make_app: MakeApp) -> None:
    with TestClient(crashing_app(make_app, ChassisSettings(environment="dev"))) as client:
        response = client.get("/crash")
    assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text
    assert "exception" not in response.json()


class Exploding:
    """A user middleware that fails on its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mw-crash":
            raise RuntimeError(SECRET)
        await self.app(scope, receive, send)


def test_exception_in_the_apps_own_middleware_is_caught_inside_the_stack(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(middleware=[Middleware(Exploding)])
    with TestClient(app) as client:
        response = client.get("/mw-crash")
    assert_problem(response, 500, "internal_error")
    assert_logged_once(caplog, RuntimeError)


def test_middleware_added_after_build_app_is_caught_by_the_boundary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fastapi_chassis import build_app

    app = build_app(ChassisSettings(environment="test"))
    app.add_middleware(Exploding)  # lands just inside the chassis stack, not outermost
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/mw-crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "hunter2" not in response.text
    [record] = tracebacks(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


async def fails_before_yield() -> AsyncIterator[int]:
    raise LookupError(SECRET)
    yield 1  # pragma: no cover - the dependency never gets here


async def fails_after_yield() -> AsyncIterator[int]:
    yield 1
    raise LookupError(SECRET)


def test_exception_in_a_yield_dependency_before_the_yield_is_a_500(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.get("/before")
    async def before(value: Annotated[int, Depends(fails_before_yield)]) -> dict[str, int]:
        return {"value": value}

    with TestClient(app) as client:
        response = client.get("/before")
    assert_problem(response, 500, "internal_error")
    assert_logged_once(caplog, LookupError)


def test_exception_in_a_yield_dependency_after_the_yield_keeps_the_sent_response(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.get("/after")
    async def after(value: Annotated[int, Depends(fails_after_yield)]) -> dict[str, int]:
        return {"value": value}

    with TestClient(app) as client:
        response = client.get("/after")
    # FastAPI runs the exit code after sending the response: nothing can replace it now.
    assert response.status_code == 200
    assert response.json() == {"value": 1}
    assert "after the response was sent" in assert_logged_once(caplog, LookupError)


def test_an_apps_own_exception_handler_renders_inside_the_stack(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = crashing_app(make_app)

    @app.exception_handler(Exception)
    async def own(request: Request, exc: Exception) -> Response:
        return JSONResponse({"oops": True}, status_code=500)

    with TestClient(app) as client:
        response = client.get("/crash")
    assert response.status_code == 500
    assert response.json() == {"oops": True}
    assert response.headers["x-request-id"] == REQUEST_ID
    assert_logged_once(caplog, ValueError)


def test_a_failing_exception_handler_falls_back_to_the_problem_500(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(middleware=[Middleware(Exploding)])

    def broken(request: Request, exc: Exception) -> Response:
        raise KeyError("handler bug")

    app.add_exception_handler(RuntimeError, broken)
    with TestClient(app) as client:
        response = client.get("/mw-crash")
    assert_problem(response, 500, "internal_error")
    # The handler's own failure is logged, then the original exception once.
    logged = [record.exc_info[0] for record in tracebacks(caplog) if record.exc_info]
    assert logged == [KeyError, RuntimeError]


@pytest.mark.anyio
async def test_client_disconnect_sends_nothing_and_logs_no_traceback(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.post("/upload")
    async def upload(request: Request) -> None:
        raise ClientDisconnect()

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/upload",
        "raw_path": b"/upload",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    with caplog.at_level(logging.INFO, logger="fastapi_chassis.errors"):
        await app(scope, receive, send)
    assert sent == []
    assert tracebacks(caplog) == []
    assert any("client disconnected" in record.getMessage() for record in caplog.records)


def test_500_passes_through_cors_so_browsers_can_read_it(make_app: MakeApp) -> None:
    from fastapi_chassis import CorsSettings

    settings = ChassisSettings(
        environment="test", cors=CorsSettings(allow_origins=["https://app.example.com"])
    )
    with TestClient(crashing_app(make_app, settings)) as client:
        response = client.get("/crash", headers={"Origin": "https://app.example.com"})
    assert_problem(response, 500, "internal_error")
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"


def test_install_keeps_an_exception_handler_the_app_already_had(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fastapi_chassis import install

    app = FastAPI()

    @app.exception_handler(Exception)
    async def own(request: Request, exc: Exception) -> Response:
        return JSONResponse({"legacy": str(type(exc).__name__)}, status_code=500)

    @app.get("/crash")
    async def crash() -> None:
        raise ValueError(SECRET)

    install(app, ChassisSettings(environment="test"))
    with TestClient(app) as client:
        response = client.get("/crash")
    assert response.json() == {"legacy": "ValueError"}
    assert len(tracebacks(caplog)) == 1


def test_install_keeps_the_apps_own_http_exception_handler() -> None:
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from fastapi_chassis import install

    app = FastAPI()

    @app.exception_handler(StarletteHTTPException)
    async def legacy(request: Request, exc: Exception) -> Response:
        return JSONResponse({"legacy": True}, status_code=418)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> None:
        return None

    install(app, ChassisSettings(environment="test"))
    with TestClient(app) as client:
        kept = client.get("/missing")
        validation = client.get("/items/x")
    assert (kept.status_code, kept.json()) == (418, {"legacy": True})
    # FastAPI's default validation handler was not the app's own, so it is replaced.
    assert validation.headers["content-type"] == "application/problem+json"


def test_error_observers_hear_each_logged_exception_once(make_app: MakeApp) -> None:
    from fastapi_chassis._chassis import get_chassis
    from fastapi_chassis._error_boundary import ERROR_OBSERVERS

    app = crashing_app(make_app)
    seen: list[tuple[str, str]] = []

    def observer(exc: Exception, scope: Any) -> None:
        seen.append((type(exc).__name__, scope["path"]))

    def broken_observer(exc: Exception, scope: Any) -> None:
        raise RuntimeError("observer bug")

    get_chassis(app).extensions[ERROR_OBSERVERS].extend([broken_observer, observer])
    with TestClient(app) as client:
        assert client.get("/crash").status_code == 500
        assert client.get("/missing").status_code == 404  # handled: not an observed failure
    assert seen == [("ValueError", "/crash")]
