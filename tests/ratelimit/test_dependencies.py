from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse

from fastapi_chassis.ratelimit import (
    MemoryLimiter,
    by_client_ip,
    by_header,
    by_subject,
    get_rate_limiting,
    rate_limit,
)
from tests.ratelimit.conftest import Calls, FakeClock, make_app, serve, settings_for


def _app(clock: FakeClock, calls: Calls | None = None, **rate_limit_settings: object) -> FastAPI:
    app = make_app(settings_for(None, **rate_limit_settings), calls)  # global limit off
    get_rate_limiting(app).limiter = MemoryLimiter(clock=clock)
    return app


@pytest.mark.anyio
async def test_route_limit_rejects_the_fourth_login_and_skips_the_handler(
    clock: FakeClock,
) -> None:
    calls = Calls()
    app = _app(clock, calls)
    async with serve(app) as http:
        responses = [await http.post("/login") for _ in range(4)]
        clock.now += 60
        later = await http.post("/login")
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert calls.count == 4
    assert responses[0].headers["RateLimit-Policy"] == '"/login";q=3;w=60'
    assert responses[0].headers["RateLimit"] == '"/login";r=2;t=60'
    rejected = responses[-1]
    assert rejected.headers["content-type"] == "application/problem+json"
    assert rejected.json()["code"] == "rate_limited"
    assert rejected.headers["Retry-After"] == "60"
    assert rejected.headers["RateLimit"] == '"/login";r=0;t=60'
    assert later.status_code == 200


@pytest.mark.anyio
async def test_each_route_has_its_own_budget_unless_they_share_a_name(clock: FakeClock) -> None:
    app = _app(clock)
    shared = rate_limit("1/minute", name="search")
    per_route = rate_limit("1/minute")

    @app.get("/a", dependencies=[Depends(per_route)])
    async def a() -> dict[str, str]:
        return {}

    @app.get("/b", dependencies=[Depends(per_route)])
    async def b() -> dict[str, str]:
        return {}

    @app.get("/c", dependencies=[Depends(shared)])
    async def c() -> dict[str, str]:
        return {}

    @app.get("/d", dependencies=[Depends(shared)])
    async def d() -> dict[str, str]:
        return {}

    async with serve(app) as http:
        assert (await http.get("/a")).status_code == 200
        assert (await http.get("/b")).status_code == 200
        assert (await http.get("/c")).headers["RateLimit-Policy"] == '"search";q=1;w=60'
        assert (await http.get("/d")).status_code == 429


@pytest.mark.anyio
async def test_limits_by_authenticated_subject_fall_back_to_ip(clock: FakeClock) -> None:
    app = _app(clock)

    async def authenticate(request: Request) -> None:
        user = request.headers.get("X-User")
        if user:
            request.state.principal = SimpleNamespace(subject=user)

    @app.get(
        "/me",
        dependencies=[Depends(authenticate), Depends(rate_limit("1/minute", key=by_subject))],
    )
    async def me() -> dict[str, str]:
        return {}

    async with serve(app) as http:
        assert (await http.get("/me", headers={"X-User": "alice"})).status_code == 200
        assert (await http.get("/me", headers={"X-User": "bob"})).status_code == 200
        assert (await http.get("/me", headers={"X-User": "alice"})).status_code == 429
        assert (await http.get("/me")).status_code == 200
        assert (await http.get("/me")).status_code == 429


@pytest.mark.anyio
async def test_api_key_and_custom_keys(clock: FakeClock) -> None:
    app = _app(clock, exempt_keys=["x-api-key:monitor", "sub:monitor"])

    def by_tenant(request: Request) -> str:
        return "tenant:" + request.path_params["tenant"]

    async def authenticate(request: Request) -> None:
        if request.headers.get("Authorization") == "Bearer monitor-token":
            request.state.principal = SimpleNamespace(subject="monitor")

    @app.get("/keyed", dependencies=[Depends(rate_limit("1/minute", key=by_header("X-API-Key")))])
    async def keyed() -> dict[str, str]:
        return {}

    @app.get(
        "/verified",
        dependencies=[Depends(authenticate), Depends(rate_limit("1/minute", key=by_subject))],
    )
    async def verified() -> dict[str, str]:
        return {}

    @app.get("/t/{tenant}", dependencies=[Depends(rate_limit("1/minute", key=by_tenant))])
    async def tenant(tenant: str) -> dict[str, str]:
        return {}

    async with serve(app) as http:
        assert (await http.get("/keyed", headers={"X-API-Key": "k1"})).status_code == 200
        assert (await http.get("/keyed", headers={"X-API-Key": "k1"})).status_code == 429
        assert (await http.get("/keyed", headers={"X-API-Key": "k2"})).status_code == 200
        # Anyone can send a header value: listing it in exempt_keys exempts nobody.
        monitor = [
            (await http.get("/keyed", headers={"X-API-Key": "monitor"})).status_code
            for _ in range(2)
        ]
        assert monitor == [200, 429]
        # A key derived from a verified identity can be exempt.
        for _ in range(3):
            ok = await http.get("/verified", headers={"Authorization": "Bearer monitor-token"})
            assert ok.status_code == 200
        assert (await http.get("/verified")).status_code == 200
        assert (await http.get("/verified")).status_code == 429
        assert (await http.get("/t/acme")).status_code == 200
        assert (await http.get("/t/acme")).status_code == 429
        assert (await http.get("/t/other")).status_code == 200


@pytest.mark.anyio
async def test_route_limits_group_ipv6_clients_by_prefix(clock: FakeClock) -> None:
    app = _app(clock)
    async with serve(app, client=("2001:db8:7:7::1", 1)) as first:
        assert [(await first.post("/login")).status_code for _ in range(2)] == [200, 200]
    async with serve(app, client=("2001:db8:7:7::2", 1)) as same_64:
        assert [(await same_64.post("/login")).status_code for _ in range(2)] == [200, 429]
    async with serve(app, client=("2001:db8:7:8::1", 1)) as other_64:
        assert (await other_64.post("/login")).status_code == 200


@pytest.mark.anyio
async def test_works_on_a_plain_fastapi_app_with_the_error_handlers() -> None:
    from fastapi_chassis.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/", dependencies=[Depends(rate_limit("1/minute", key=by_client_ip))])
    async def root() -> PlainTextResponse:
        return PlainTextResponse("ok")

    async with serve(app, client=("192.0.2.99", 1)) as http:
        assert (await http.get("/")).status_code == 200
        rejected = await http.get("/")
    assert rejected.status_code == 429
    assert rejected.headers["content-type"] == "application/problem+json"


@pytest.mark.anyio
async def test_route_limits_see_clients_behind_trusted_proxies(clock: FakeClock) -> None:
    from fastapi_chassis import ProxySettings

    settings = settings_for(None)
    settings.proxy = ProxySettings(trusted=["10.0.0.0/8"])
    app = make_app(settings)
    get_rate_limiting(app).limiter = MemoryLimiter(clock=clock)
    statuses = []
    async with serve(app, client=("10.0.0.2", 1)) as proxy:
        for client in ["192.0.2.1"] * 4 + ["192.0.2.2"]:
            response = await proxy.post("/login", headers={"X-Forwarded-For": client})
            statuses.append(response.status_code)
    async with serve(app, client=("198.51.100.1", 1)) as direct:
        for client in ["192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6"]:
            response = await direct.post("/login", headers={"X-Forwarded-For": client})
            statuses.append(response.status_code)
    # Behind the proxy each forwarded client has its own budget; direct, the spoofed header
    # is ignored and all four count against the peer.
    assert statuses[:5] == [200, 200, 200, 429, 200]
    assert statuses[5:] == [200, 200, 200, 429]


@pytest.mark.anyio
async def test_a_non_ascii_route_path_still_makes_a_valid_policy_name(clock: FakeClock) -> None:
    app = _app(clock)

    @app.get("/café", dependencies=[Depends(rate_limit("1/minute"))])
    async def cafe() -> dict[str, str]:
        return {}

    async with serve(app) as http:
        response = await http.get("/café")
    assert response.status_code == 200
    assert response.headers["RateLimit-Policy"] == '"/caf_";q=1;w=60'
