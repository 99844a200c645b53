"""Host and CORS-preflight rejections are problem+json like every other chassis error."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient

from fastapi_chassis import ChassisSettings, build_app


def _app(**settings: object) -> FastAPI:
    app = build_app(ChassisSettings(_env_file=None, **settings))  # type: ignore[arg-type]

    @app.get("/items")
    async def items() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/teapot")
    async def teapot() -> PlainTextResponse:
        # The app's own 400 with the guard's text must pass through untouched.
        return PlainTextResponse("Invalid host header", status_code=400)

    return app


def test_an_unknown_host_gets_a_400_problem_with_the_chassis_headers() -> None:
    app = _app(trusted_hosts={"allowed_hosts": ["api.example.com", "*.internal"]})
    with TestClient(app, base_url="http://evil.example") as client:
        response = client.get("/items")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid_host"
    assert body["status"] == 400
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_missing_or_garbage_host_header_is_a_problem_too() -> None:
    app = _app(trusted_hosts={"allowed_hosts": ["api.example.com"]})
    with TestClient(app) as client:
        for host in ("", "a b", "[::1"):
            response = client.get("/items", headers={"host": host})
            assert response.status_code == 400, host
            assert response.json()["code"] == "invalid_host"


def test_allowed_hosts_and_the_apps_own_400s_are_untouched() -> None:
    app = _app(trusted_hosts={"allowed_hosts": ["api.example.com", "*.internal"]})
    with TestClient(app, base_url="http://api.example.com") as client:
        assert client.get("/items").json() == {"ok": True}
        own = client.get("/teapot")
        assert own.status_code == 400
        assert own.text == "Invalid host header"
        assert own.headers["content-type"].startswith("text/plain")
    with TestClient(app, base_url="http://db.internal") as client:
        assert client.get("/items").status_code == 200


def test_www_redirect_still_redirects() -> None:
    app = _app(trusted_hosts={"allowed_hosts": ["www.example.com"]})
    with TestClient(app, base_url="http://example.com", follow_redirects=False) as client:
        response = client.get("/items")
    assert response.status_code in (301, 307)
    assert response.headers["location"].startswith("http://www.example.com/items")


def test_a_refused_cors_preflight_is_a_problem_that_keeps_the_cors_headers() -> None:
    app = _app(cors={"allow_origins": ["https://app.example"], "allow_methods": ["GET"]})
    with TestClient(app) as client:
        refused = client.options(
            "/items",
            headers={
                "origin": "https://evil.example",
                "access-control-request-method": "DELETE",
            },
        )
        allowed = client.options(
            "/items",
            headers={"origin": "https://app.example", "access-control-request-method": "GET"},
        )
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["code"] == "cors_preflight_rejected"
    assert body["rejected"] == ["origin", "method"]
    assert "access-control-allow-methods" in refused.headers
    assert refused.headers["x-request-id"] == body["request_id"]
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
