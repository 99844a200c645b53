from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_chassis import (
    AuthSettings,
    ChassisSettings,
    ConfigurationError,
    CorsSettings,
    CurrentSettings,
    DocsSettings,
    build_app,
    get_settings,
    install,
)

STRONG = "Zx8-q2Lr7vNn4TtYp0aWc3Kd9Ue6Fh1JbGm5Si2Oo8Rl"


def test_build_app_serves_openapi_and_docs_from_settings() -> None:
    app = build_app(ChassisSettings(service_name="notes", version="1.2.3"))
    with TestClient(app) as client:
        spec = client.get("/openapi.json").json()
        assert spec["info"] == {"title": "notes", "version": "1.2.3"}
        assert client.get("/docs").status_code == 200


def test_prod_build_hides_docs_unless_enabled() -> None:
    prod = ChassisSettings(environment="prod", auth=AuthSettings(jwt_secret=SecretStr(STRONG)))
    with TestClient(build_app(prod)) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404
    enabled = prod.model_copy(update={"docs": DocsSettings(enabled=True)})
    with TestClient(build_app(enabled)) as client:
        assert client.get("/openapi.json").status_code == 200


def test_custom_docs_urls() -> None:
    settings = ChassisSettings(
        docs=DocsSettings(docs_url="/api/docs", openapi_url="/api/spec.json")
    )
    with TestClient(build_app(settings)) as client:
        assert client.get("/api/spec.json").status_code == 200
        assert client.get("/api/docs").status_code == 200


def test_build_app_without_argument_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHASSIS_SERVICE_NAME", "from-env")
    app = build_app()
    assert app.title == "from-env"


def test_fastapi_kwargs_win_over_settings() -> None:
    app = build_app(ChassisSettings(service_name="a"), title="explicit")
    assert app.title == "explicit"


def test_user_lifespan_runs_inside_chassis_lifespan_in_order() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("user startup")
        yield {"db": "connected"}
        events.append("user shutdown")

    app = build_app(ChassisSettings(), lifespan=lifespan)

    @asynccontextmanager
    async def resource(app_: Any) -> AsyncIterator[None]:
        events.append("chassis open")
        yield
        events.append("chassis close")

    app.state.chassis.add_resource(resource)

    async def before_shutdown() -> None:
        events.append("before user shutdown")

    app.state.chassis.add_before_shutdown(before_shutdown)

    @app.get("/state")
    async def state(request: Request) -> dict[str, str]:
        return {"db": request.state.db}

    with TestClient(app) as client:
        assert client.get("/state").json() == {"db": "connected"}
        events.append("serving")
    assert events == [
        "chassis open",
        "user startup",
        "serving",
        "before user shutdown",
        "user shutdown",
        "chassis close",
    ]


class GreetingSettings(ChassisSettings):
    greeting: str = "hi"


AppSettings = Annotated[GreetingSettings, Depends(get_settings)]


def test_current_settings_hands_handlers_the_app_settings_and_is_overridable() -> None:
    app = build_app(GreetingSettings(service_name="one"))

    @app.get("/who")
    async def who(settings: CurrentSettings, mine: AppSettings) -> dict[str, str]:
        return {"name": settings.service_name, "greeting": mine.greeting}

    with TestClient(app) as client:
        assert client.get("/who").json() == {"name": "one", "greeting": "hi"}
        app.dependency_overrides[get_settings] = lambda: GreetingSettings(
            service_name="two", greeting="yo"
        )
        assert client.get("/who").json() == {"name": "two", "greeting": "yo"}


class _Tagging:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def tagged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-user-mw", b"1")]
            await send(message)

        await self.app(scope, receive, tagged if scope["type"] == "http" else send)


class OrderMissing(Exception):
    pass


def test_install_keeps_existing_routes_middleware_and_handlers() -> None:
    app = FastAPI()
    app.add_middleware(_Tagging)

    @app.exception_handler(OrderMissing)
    async def missing(request: Request, exc: OrderMissing) -> JSONResponse:
        return JSONResponse({"legacy": True}, status_code=410)

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, int]:
        if order_id == 0:
            raise OrderMissing
        return {"id": order_id}

    install(app, ChassisSettings())
    with TestClient(app) as client:
        response = client.get("/orders/7")
        assert response.json() == {"id": 7}
        assert response.headers["x-user-mw"] == "1"
        gone = client.get("/orders/0")
        assert gone.status_code == 410
        assert gone.json() == {"legacy": True}


def test_install_twice_raises_clear_error() -> None:
    app = build_app(ChassisSettings())
    with pytest.raises(ConfigurationError, match="already called"):
        install(app, ChassisSettings())


def test_install_after_start_raises() -> None:
    app = FastAPI()
    with TestClient(app):
        pass
    with pytest.raises(ConfigurationError, match="before the app serves"):
        install(app, ChassisSettings())


def test_cors_from_settings_exposes_request_id_header() -> None:
    settings = ChassisSettings(cors=CorsSettings(allow_origins=["https://app.example"]))
    app = build_app(settings)

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        response = client.get("/ping", headers={"Origin": "https://app.example"})
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert "X-Request-ID" in response.headers["access-control-expose-headers"]


def test_settings_dependency_without_chassis_is_a_clear_error() -> None:
    app = FastAPI()

    @app.get("/s")
    async def s(settings: CurrentSettings) -> str:
        return settings.service_name

    with (
        TestClient(app, raise_server_exceptions=True) as client,
        pytest.raises(ConfigurationError, match="install"),
    ):
        client.get("/s")


def test_add_middleware_after_build_app_runs_inside_the_chassis_stack() -> None:
    app = build_app(ChassisSettings())
    seen: list[str] = []

    class Crashy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == "/crash-in-mw":
                raise RuntimeError("user middleware bug")
            await self.app(scope, receive, send)

    app.add_middleware(Crashy)

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        seen.append(request.url.path)
        return await call_next(request)

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/ok").json() == {"ok": True}
        crash = client.get("/crash-in-mw")
        assert crash.status_code == 500
        assert crash.headers["content-type"] == "application/problem+json"
        assert crash.json()["status"] == 500
    assert seen == ["/ok", "/crash-in-mw"]
    classes = [m.cls for m in app.user_middleware]
    # The boundary runs inside the core layer with the body limit (fused by default).
    boundary = next(i for i, cls in enumerate(classes) if cls.__name__ == "CoreMiddleware")
    assert boundary < classes.index(Crashy)


def test_chassis_routes_keep_answering_next_to_an_app_catch_all() -> None:
    app = build_app(ChassisSettings())

    @app.get("/{path:path}")
    async def catch_all(path: str) -> dict[str, str]:
        return {"caught": path}

    @app.post("/healthz")
    async def post_health() -> dict[str, str]:
        return {"caught": "post"}

    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.head("/readyz").status_code == 200
        assert client.get("/_chassis/docs/swagger-ui.css").status_code == 200
        assert client.post("/healthz").json() == {"caught": "post"}
        assert client.get("/anything/else").json() == {"caught": "anything/else"}


def test_app_routes_answer_before_the_chassis_routes_are_tried() -> None:
    app = build_app(ChassisSettings())

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    with TestClient(app) as client:
        assert client.get("/items/3").json() == {"id": 3}
        assert client.get("/healthz").status_code == 200
    paths = [getattr(route, "path", "") for route in app.router.routes]
    assert paths.index("/items/{item_id}") < paths.index("/healthz")
