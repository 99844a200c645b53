from __future__ import annotations

import sys
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_chassis import (
    BodyLimitSettings,
    ChassisSettings,
    ConfigurationError,
    DocsSettings,
    ProxySettings,
    SecurityHeadersMiddleware,
    SecurityHeadersSettings,
    build_app,
)
from tests.middleware.asgi import request

API_DEFAULTS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "x-permitted-cross-domain-policies": "none",
    "cache-control": "no-store",
}


def api(settings: ChassisSettings | None = None) -> FastAPI:
    app = build_app(settings or ChassisSettings())

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/cacheable")
    async def cacheable() -> JSONResponse:
        return JSONResponse(
            {"ok": True},
            headers={
                "Cache-Control": "public, max-age=60",
                "Content-Security-Policy": "default-src 'self'",
                "Strict-Transport-Security": "max-age=60",
            },
        )

    return app


def test_json_responses_get_the_owasp_defaults_and_no_deprecated_headers() -> None:
    with TestClient(api()) as client:
        response = client.get("/items/1")
    for name, value in API_DEFAULTS.items():
        assert response.headers[name] == value, name
    assert "camera=()" in response.headers["permissions-policy"]
    for deprecated in ("x-xss-protection", "expect-ct", "public-key-pins", "feature-policy"):
        assert deprecated not in response.headers
    assert "strict-transport-security" not in response.headers  # plain http


def test_headers_the_handler_set_itself_win() -> None:
    with TestClient(api(), base_url="https://testserver") as client:
        response = client.get("/cacheable")
    assert response.headers.get_list("cache-control") == ["public, max-age=60"]
    assert response.headers.get_list("content-security-policy") == ["default-src 'self'"]
    assert response.headers.get_list("strict-transport-security") == ["max-age=60"]
    assert response.headers["x-frame-options"] == "DENY"


def test_hsts_only_over_https() -> None:
    with TestClient(api(), base_url="https://testserver") as client:
        response = client.get("/items/1")
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


@pytest.mark.anyio
async def test_forwarded_https_counts_only_from_a_trusted_proxy() -> None:
    settings = ChassisSettings(proxy=ProxySettings(trusted=["10.0.0.0/8"]))
    app = api(settings)
    proto = [(b"x-forwarded-proto", b"https")]
    spoofed = await request(app, "/items/1", headers=proto, client=("203.0.113.5", 4000))
    proxied = await request(app, "/items/1", headers=proto, client=("10.0.0.2", 4000))
    assert spoofed.header("strict-transport-security") is None
    assert proxied.header("strict-transport-security") == "max-age=63072000; includeSubDomains"


def test_hsts_settings_force_preload_and_off() -> None:
    forced = SecurityHeadersSettings(force_hsts=True, hsts_preload=True, hsts_max_age=31536000)
    with TestClient(api(ChassisSettings(security_headers=forced))) as client:
        value = client.get("/items/1").headers["strict-transport-security"]
    assert value == "max-age=31536000; includeSubDomains; preload"
    off = SecurityHeadersSettings(hsts=False)
    with TestClient(api(ChassisSettings(security_headers=off)), base_url="https://t") as client:
        assert "strict-transport-security" not in client.get("/items/1").headers


def test_preload_without_its_requirements_is_refused() -> None:
    bad = SecurityHeadersSettings(hsts_preload=True, hsts_max_age=600)
    with pytest.raises(ConfigurationError, match="HSTS_MAX_AGE"):
        build_app(ChassisSettings(security_headers=bad))


def test_every_header_is_configurable_removable_and_extendable() -> None:
    config = SecurityHeadersSettings(
        frame_options="",
        cross_origin_resource_policy="cross-origin",
        cache_control="",
        extra_headers={"Cross-Origin-Embedder-Policy": "require-corp"},
    )
    with TestClient(api(ChassisSettings(security_headers=config))) as client:
        response = client.get("/items/1")
    assert "x-frame-options" not in response.headers
    assert "cache-control" not in response.headers
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.headers["cross-origin-embedder-policy"] == "require-corp"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"X-XSS-Protection": "1; mode=block"}, "X-XSS-Protection"),
        ({"Expect-CT": "max-age=0"}, "obsolete"),
        ({"X-Test": "a\r\nSet-Cookie: x=1"}, "no CR/LF"),
        ({"Bad Name": "x"}, "not a valid HTTP token"),
    ],
)
def test_unsafe_header_configuration_is_refused_at_build_time(
    extra: dict[str, str], message: str
) -> None:
    config = SecurityHeadersSettings(extra_headers=extra)
    with pytest.raises(ConfigurationError, match=message):
        build_app(ChassisSettings(security_headers=config))


class _Answers500:
    """Stands in for the error boundary: renders a 500 inside the chassis middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/crash":
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await self.app(scope, receive, send)


def test_error_responses_carry_the_headers_too() -> None:
    app = api(ChassisSettings(body_limit=BodyLimitSettings(max_bytes=5)))
    app.user_middleware.append(Middleware(_Answers500))

    @app.post("/echo")
    async def echo(payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    with TestClient(app) as client:
        responses = {
            404: client.get("/nowhere"),
            422: client.get("/items/not-a-number"),
            413: client.post("/echo", json={"a": "long enough"}),
            400: client.post("/echo", content=b"{}", headers={"Content-Length": "abc"}),
            405: client.delete("/items/1"),
            500: client.get("/crash"),
        }
    for status, response in responses.items():
        assert response.status_code == status
        for name, value in API_DEFAULTS.items():
            assert response.headers[name] == value, (status, name)


def test_websocket_route_works_through_the_whole_stack() -> None:
    app = api()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/ws") as socket:
        socket.send_text("ping")
        assert socket.receive_text() == "ping"


def test_disabled_security_headers_add_no_middleware() -> None:
    settings = ChassisSettings(security_headers=SecurityHeadersSettings(enabled=False))
    app = api(settings)
    assert all(m.cls is not SecurityHeadersMiddleware for m in app.user_middleware)
    with TestClient(app) as client:
        assert "x-frame-options" not in client.get("/items/1").headers


def test_docs_pages_get_their_own_self_only_policy_and_api_paths_keep_theirs() -> None:
    with TestClient(api()) as client:
        docs = client.get("/docs")
        redoc = client.get("/redoc")
        redirect = client.get("/docs/oauth2-redirect")
        spec = client.get("/openapi.json")
        asset = client.get("/_chassis/docs/swagger-ui-bundle.js")
        init = client.get("/_chassis/docs/swagger-init.js")
        unknown = client.get("/_chassis/docs/..%2F..%2Fsettings.py")
    for page in (docs, redoc, redirect):
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "http" not in csp
        assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in docs.headers["content-security-policy"]
    # ReDoc builds its styles at run time: inline styles on its page only, never scripts.
    assert "style-src 'self' 'unsafe-inline'" in redoc.headers["content-security-policy"]
    assert "cdn" not in docs.text
    assert 'src="/_chassis/docs/swagger-ui-bundle.js"' in docs.text
    assert "<script>" not in docs.text
    assert spec.headers["content-security-policy"] == API_DEFAULTS["content-security-policy"]
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith("text/javascript")
    assert asset.headers["cache-control"] == "public, max-age=86400"
    assert init.status_code == 200
    assert unknown.status_code == 404


def test_docs_fall_back_to_the_cdn_and_name_it_in_the_policy_without_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi_offline", None)
    with TestClient(api()) as client:
        docs = client.get("/docs")
        bundle = client.get("/_chassis/docs/swagger-ui-bundle.js")
    assert "script-src 'self' https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js" in docs.text
    assert 'src="/_chassis/docs/swagger-init.js"' in docs.text
    assert bundle.status_code == 404


def test_docs_csp_override_and_custom_docs_paths() -> None:
    settings = ChassisSettings(
        docs=DocsSettings(docs_url="/api/docs", redoc_url="/api/redoc"),
        security_headers=SecurityHeadersSettings(
            docs_content_security_policy="default-src 'self'; frame-ancestors 'none'"
        ),
    )
    with TestClient(api(settings)) as client:
        for path in ("/api/docs", "/api/redoc"):
            response = client.get(path)
            assert response.status_code == 200
            assert response.headers["content-security-policy"] == (
                "default-src 'self'; frame-ancestors 'none'"
            )
        assert client.get("/docs").status_code == 404


def test_install_on_an_existing_app_swaps_its_cdn_docs_for_self_hosted_ones() -> None:
    from fastapi_chassis import install

    app = FastAPI(title="legacy")
    install(app, ChassisSettings())
    with TestClient(app) as client:
        docs = client.get("/docs")
    assert "cdn.jsdelivr" not in docs.text
    assert "legacy - Swagger UI" in docs.text


def test_docs_behind_a_root_path_link_assets_under_it_and_keep_the_docs_policy() -> None:
    with TestClient(api(), root_path="/api") as client:
        docs = client.get("/docs")
    assert 'src="/api/_chassis/docs/swagger-ui-bundle.js"' in docs.text
    assert "&quot;url&quot;: &quot;/api/openapi.json&quot;" in docs.text
    assert "script-src 'self'" in docs.headers["content-security-policy"]
