from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI, Request, WebSocket

from fastapi_chassis import ChassisSettings, ProxySettings, RateLimitSettings, build_app
from fastapi_chassis.ratelimit import (
    MemoryLimiter,
    RateLimitEvent,
    RateLimitMiddleware,
    add_rate_limit_listener,
    get_rate_limiting,
)
from tests.ratelimit.conftest import Calls, FakeClock, make_app, serve, settings_for


def _frozen(app: object, clock: FakeClock) -> None:
    get_rate_limiting(app).limiter = MemoryLimiter(clock=clock)


@pytest.mark.anyio
async def test_allowed_responses_carry_policy_and_remaining(clock: FakeClock) -> None:
    app = make_app(settings_for("5/minute"))
    _frozen(app, clock)
    async with serve(app) as http:
        first = await http.get("/ping")
        clock.now += 10
        second = await http.get("/ping")
    assert first.status_code == 200
    assert first.headers["RateLimit-Policy"] == '"default";q=5;w=60'
    assert first.headers["RateLimit"] == '"default";r=4;t=60'
    assert second.headers["RateLimit"] == '"default";r=3;t=50'
    assert "Retry-After" not in second.headers
    assert "X-RateLimit-Limit" not in second.headers


@pytest.mark.anyio
async def test_over_the_limit_gets_429_problem_and_the_handler_does_not_run(
    clock: FakeClock,
) -> None:
    calls = Calls()
    app = make_app(settings_for("5/minute"), calls)
    _frozen(app, clock)
    async with serve(app) as http:
        for _ in range(5):
            assert (await http.get("/ping")).status_code == 200
        clock.now += 20.5
        rejected = await http.get("/ping")
    assert calls.count == 5
    assert rejected.status_code == 429
    assert rejected.headers["content-type"] == "application/problem+json"
    body = rejected.json()
    assert body["status"] == 429
    assert body["code"] == "rate_limited"
    assert "5/minute" in body["detail"]
    assert rejected.headers["RateLimit-Policy"] == '"default";q=5;w=60'
    assert rejected.headers["RateLimit"] == '"default";r=0;t=40'
    assert rejected.headers["Retry-After"] == "40"
    assert int(rejected.headers["content-length"]) == len(rejected.content)


@pytest.mark.anyio
async def test_retry_after_is_never_earlier_than_t(clock: FakeClock) -> None:
    app = make_app(settings_for("2/second;3/minute"))
    _frozen(app, clock)
    async with serve(app) as http:
        for step in (0.0, 0.3, 0.4, 0.35, 0.3):
            clock.now += step
            response = await http.get("/ping")
    assert response.status_code == 429
    assert response.headers["RateLimit-Policy"] == (
        '"default-second";q=2;w=1, "default-minute";q=3;w=60'
    )
    items = dict(
        item.split(";", 1) for item in response.headers["RateLimit"].replace(" ", "").split(",")
    )
    t_minute = int(items['"default-minute"'].split("t=")[1])
    assert items['"default-second"'] == "r=1;t=1"
    assert items['"default-minute"'].startswith("r=0")
    assert int(response.headers["Retry-After"]) >= t_minute == 59


@pytest.mark.anyio
async def test_legacy_headers_only_when_asked(clock: FakeClock) -> None:
    app = make_app(settings_for("5/minute", legacy_headers=True))
    _frozen(app, clock)
    async with serve(app) as http:
        response = await http.get("/ping")
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "4"
    assert response.headers["X-RateLimit-Reset"] == "60"


@pytest.mark.anyio
async def test_health_paths_are_exempt_by_default(clock: FakeClock) -> None:
    app = make_app(settings_for("1/minute"))
    _frozen(app, clock)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async with serve(app) as http:
        assert (await http.get("/ping")).status_code == 200
        assert (await http.get("/ping")).status_code == 429
        for _ in range(3):
            health = await http.get("/healthz")
            assert health.status_code == 200
            assert "RateLimit" not in health.headers


@pytest.mark.anyio
async def test_configured_exempt_paths_cover_subpaths_only(clock: FakeClock) -> None:
    app = make_app(settings_for("1/minute", exempt_paths=["/internal/"]))
    _frozen(app, clock)

    @app.get("/internal/{name}")
    async def internal(name: str) -> dict[str, str]:
        return {"name": name}

    @app.get("/internals")
    async def internals() -> dict[str, str]:
        return {}

    async with serve(app) as http:
        for _ in range(3):
            assert (await http.get("/internal/a")).status_code == 200
        assert (await http.get("/internals")).status_code == 200
        assert (await http.get("/internals")).status_code == 429


@pytest.mark.anyio
async def test_exempt_keys_are_never_limited(clock: FakeClock) -> None:
    app = make_app(settings_for("1/minute", exempt_keys=["10.0.0.7"]))
    _frozen(app, clock)
    async with serve(app, client=("10.0.0.7", 1)) as monitor:
        for _ in range(5):
            assert (await monitor.get("/ping")).status_code == 200
    async with serve(app) as other:
        assert (await other.get("/ping")).status_code == 200
        assert (await other.get("/ping")).status_code == 429


def _proxy_settings(trusted: list[str]) -> ChassisSettings:
    return ChassisSettings(
        rate_limit=RateLimitSettings(enabled=True, default="1/minute"),
        proxy=ProxySettings(trusted=trusted),
    )


@pytest.mark.anyio
async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(clock: FakeClock) -> None:
    app = make_app(_proxy_settings(["10.0.0.0/8"]))
    _frozen(app, clock)
    async with serve(app, client=("198.51.100.9", 1)) as attacker:
        first = await attacker.get("/ping", headers={"X-Forwarded-For": "192.0.2.1"})
        second = await attacker.get("/ping", headers={"X-Forwarded-For": "192.0.2.2"})
    assert (first.status_code, second.status_code) == (200, 429)


@pytest.mark.anyio
async def test_forwarded_for_from_a_trusted_proxy_separates_clients(clock: FakeClock) -> None:
    app = make_app(_proxy_settings(["10.0.0.0/8"]))
    _frozen(app, clock)
    async with serve(app, client=("10.0.0.2", 1)) as proxy:
        a = await proxy.get("/ping", headers={"X-Forwarded-For": "192.0.2.1"})
        b = await proxy.get("/ping", headers={"X-Forwarded-For": "192.0.2.2"})
        # The client prepends a fake hop; the proxy appends the real one, which is counted.
        a_again = await proxy.get("/ping", headers={"X-Forwarded-For": "192.0.2.2, 192.0.2.1"})
    assert (a.status_code, b.status_code, a_again.status_code) == (200, 200, 429)


@pytest.mark.anyio
async def test_the_global_limit_cannot_be_escaped_with_fresh_header_values(
    clock: FakeClock,
) -> None:
    app = make_app(settings_for("2/minute", exempt_keys=["x-api-key:monitoring"]))
    _frozen(app, clock)
    async with serve(app) as http:
        fresh = [
            (await http.get("/ping", headers={"X-API-Key": f"k{i}"})).status_code for i in range(4)
        ]
        claimed = await http.get("/ping", headers={"X-API-Key": "monitoring"})
    assert fresh == [200, 200, 429, 429]
    assert claimed.status_code == 429


def test_the_global_limit_has_no_header_key_setting() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="key_header"):
        RateLimitSettings(key_header="X-API-Key")  # type: ignore[call-arg]


@pytest.mark.anyio
async def test_listeners_hear_rejections(clock: FakeClock) -> None:
    app = make_app(settings_for("1/minute"))
    _frozen(app, clock)
    events: list[RateLimitEvent] = []
    add_rate_limit_listener(app, events.append)

    def broken(event: RateLimitEvent) -> None:
        raise RuntimeError("metrics backend down")

    add_rate_limit_listener(app, broken)
    async with serve(app) as http:
        await http.get("/ping")
        rejected = await http.get("/ping")
    assert rejected.status_code == 429
    assert events == [RateLimitEvent("rejected", "default")]


def test_middleware_sits_after_trusted_hosts_and_is_absent_when_disabled() -> None:
    enabled = build_app(
        ChassisSettings(
            rate_limit=RateLimitSettings(enabled=True),
            trusted_hosts={"allowed_hosts": ["testserver"]},  # type: ignore[arg-type]
        )
    )
    names = [m.cls.__name__ for m in enabled.user_middleware]  # type: ignore[attr-defined]
    assert names.index("ProblemTrustedHostMiddleware") < names.index("RateLimitMiddleware")
    disabled = build_app(ChassisSettings())
    assert "RateLimitMiddleware" not in [
        m.cls.__name__  # type: ignore[attr-defined]
        for m in disabled.user_middleware
    ]


@pytest.mark.anyio
async def test_standalone_middleware_on_a_plain_app(caplog: pytest.LogCaptureFixture) -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def root(request: Request) -> dict[str, str]:
        return {}

    app.add_middleware(RateLimitMiddleware, limits="1/minute", name="plain")
    async with serve(app) as http:  # type: ignore[arg-type]
        first = await http.get("/")
        second = await http.get("/")
    assert first.headers["RateLimit-Policy"] == '"plain";q=1;w=60'
    assert second.status_code == 429
    assert second.json()["type"] == "about:blank"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_store_failures_warn_once_per_interval_with_a_count(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi_chassis.ratelimit import RateLimiting
    from fastapi_chassis.state import StateUnavailable

    runtime = RateLimiting(clock=clock, warn_interval=30, fail_open=False)
    failure = StateUnavailable("down", extra={"reason": "TimeoutError"})
    with caplog.at_level(logging.WARNING, "fastapi_chassis.ratelimit"):
        for _ in range(3):
            runtime.store_failed("default", failure)
            clock.now += 10
        runtime.store_failed("default", failure)
    messages = [r.getMessage() for r in caplog.records if r.name == "fastapi_chassis.ratelimit"]
    assert len(messages) == 2
    assert "TimeoutError" in messages[0]
    assert "failing closed" in messages[0]
    assert "2 similar failure(s)" in messages[1]


@pytest.mark.anyio
async def test_problem_type_follows_the_errors_base_url(clock: FakeClock) -> None:
    settings = ChassisSettings(
        rate_limit=RateLimitSettings(enabled=True, default="1/minute"),
        errors={"type_base_url": "https://errors.example.com/"},  # type: ignore[arg-type]
    )
    app = make_app(settings)
    _frozen(app, clock)
    async with serve(app) as http:
        await http.get("/ping")
        rejected = await http.get("/ping")
        await http.post("/login")
        route_rejected = await http.post("/login")
    assert rejected.json()["type"] == "https://errors.example.com/rate_limited"
    assert route_rejected.status_code == 429
    assert route_rejected.json()["type"] == "https://errors.example.com/rate_limited"


def test_websockets_pass_through_untouched() -> None:
    from fastapi.testclient import TestClient

    app = make_app(settings_for("1/minute"))

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("hi")
        await socket.close()

    with TestClient(app) as client:
        for _ in range(3):
            with client.websocket_connect("/ws") as connection:
                assert connection.receive_text() == "hi"
        assert client.get("/ping").status_code == 200
        assert client.get("/ping").status_code == 429


async def _statuses(app: FastAPI, peer: str, n: int = 1, **headers: str) -> list[int]:
    async with serve(app, client=(peer, 1)) as http:
        return [(await http.get("/ping", headers=headers)).status_code for _ in range(n)]


@pytest.mark.anyio
async def test_ipv6_addresses_in_one_64_share_one_budget(clock: FakeClock) -> None:
    app = make_app(settings_for("2/minute"))
    _frozen(app, clock)
    assert await _statuses(app, "2001:db8:1:2::1") == [200]
    assert await _statuses(app, "2001:db8:1:2:ffff:ffff:ffff:fffe") == [200]
    assert await _statuses(app, "2001:db8:1:2::3") == [429]
    # The neighbouring /64 and IPv4 clients keep budgets of their own.
    assert await _statuses(app, "2001:db8:1:3::1", 3) == [200, 200, 429]
    assert await _statuses(app, "192.0.2.1", 3) == [200, 200, 429]
    assert await _statuses(app, "192.0.2.2", 3) == [200, 200, 429]


@pytest.mark.anyio
async def test_rotating_ipv6_addresses_does_not_escape_the_limit(clock: FakeClock) -> None:
    app = make_app(settings_for("5/minute"))
    _frozen(app, clock)
    statuses = [(await _statuses(app, f"2001:db8::{i:x}"))[0] for i in range(1, 21)]
    assert statuses.count(200) == 5
    limiter = get_rate_limiting(app).limiter
    assert isinstance(limiter, MemoryLimiter)
    assert len(limiter) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("prefix", "second_peer", "shared"),
    [
        (48, "2001:db8:1:ff::1", True),
        (64, "2001:db8:1:ff::1", False),
        (128, "2001:db8:1::2", False),
    ],
)
async def test_ipv6_prefix_is_configurable(
    clock: FakeClock, prefix: int, second_peer: str, shared: bool
) -> None:
    app = make_app(settings_for("1/minute", ipv6_prefix=prefix))
    _frozen(app, clock)
    assert await _statuses(app, "2001:db8:1::1") == [200]
    assert await _statuses(app, second_peer) == [429 if shared else 200]


@pytest.mark.anyio
async def test_forwarded_ipv6_clients_are_grouped_by_prefix(clock: FakeClock) -> None:
    app = make_app(_proxy_settings(["10.0.0.0/8"]))
    _frozen(app, clock)
    first = await _statuses(app, "10.0.0.2", **{"X-Forwarded-For": "2001:db8:5:6::1"})
    second = await _statuses(app, "10.0.0.2", **{"X-Forwarded-For": "2001:db8:5:6::2"})
    mapped = await _statuses(app, "::ffff:192.0.2.9")
    ipv4 = await _statuses(app, "192.0.2.9")
    assert (first, second, mapped, ipv4) == ([200], [429], [200], [429])


def test_ipv6_prefix_outside_32_to_128_is_rejected() -> None:
    from pydantic import ValidationError

    for prefix in (16, 129):
        with pytest.raises(ValidationError, match="ipv6_prefix"):
            RateLimitSettings(ipv6_prefix=prefix)


@pytest.mark.anyio
async def test_exempt_keys_accept_cidrs(clock: FakeClock) -> None:
    app = make_app(settings_for("1/minute", exempt_keys=["192.0.2.0/24", "2001:db8:9:9::7"]))
    _frozen(app, clock)
    assert await _statuses(app, "192.0.2.44", 3) == [200, 200, 200]
    # An IPv6 client counts as its /64, so listing one address exempts its /64.
    assert await _statuses(app, "2001:db8:9:9::1234", 3) == [200, 200, 200]
    assert await _statuses(app, "198.51.100.1", 2) == [200, 429]
    assert await _statuses(app, "2001:db8:9:a::1", 2) == [200, 429]
