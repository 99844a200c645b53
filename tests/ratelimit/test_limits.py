from __future__ import annotations

import pytest

from fastapi_chassis import ChassisSettings, ConfigurationError, RateLimitSettings, build_app
from fastapi_chassis.ratelimit import Limit, parse_limits, rate_limit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/minute", (Limit(100, 60, "minute"),)),
        ("5/second", (Limit(5, 1, "second"),)),
        ("1000/hour", (Limit(1000, 3600, "hour"),)),
        ("20000/day", (Limit(20000, 86400, "day"),)),
        (" 7 / Minutes ", (Limit(7, 60, "minute"),)),
        ("3 per hour", (Limit(3, 3600, "hour"),)),
        ("500/hour;10/second", (Limit(10, 1, "second"), Limit(500, 3600, "hour"))),
        (
            "10/s; 100/min; 1000/h; 5000/d;",
            (
                Limit(10, 1, "second"),
                Limit(100, 60, "minute"),
                Limit(1000, 3600, "hour"),
                Limit(5000, 86400, "day"),
            ),
        ),
    ],
)
def test_parses_counts_per_unit_shortest_window_first(
    text: str, expected: tuple[Limit, ...]
) -> None:
    assert parse_limits(text) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "is empty"),
        ("100", "'100'"),
        ("abc/minute", "'abc/minute'"),
        ("10/fortnight", "'10/fortnight'"),
        ("-1/minute", "'-1/minute'"),
        ("1.5/second", "'1.5/second'"),
        ("0/second", "at least 1"),
        ("10/second;20/sec", "two limits per second"),
        ("10/second,500/hour", "'10/second,500/hour'"),
    ],
)
def test_bad_text_is_named_with_the_setting_and_the_expected_form(text: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_limits(text, setting="CHASSIS_RATE_LIMIT__DEFAULT")
    message = str(info.value)
    assert "CHASSIS_RATE_LIMIT__DEFAULT" in message
    assert named in message


def test_limit_renders_as_it_is_written() -> None:
    assert str(parse_limits("5/min")[0]) == "5/minute"


def test_bad_default_fails_at_startup_naming_the_env_var() -> None:
    settings = ChassisSettings(rate_limit=RateLimitSettings(enabled=True, default="100/mnute"))
    with pytest.raises(ConfigurationError, match=r"CHASSIS_RATE_LIMIT__DEFAULT has '100/mnute'"):
        build_app(settings)


def test_disabled_global_limit_is_not_parsed_or_installed() -> None:
    settings = ChassisSettings(rate_limit=RateLimitSettings(enabled=False, default="nonsense"))
    app = build_app(settings)
    assert not any(m.cls.__name__ == "RateLimitMiddleware" for m in app.user_middleware)


def test_bad_route_limit_fails_when_the_route_is_defined() -> None:
    with pytest.raises(ConfigurationError, match=r"rate_limit\('5/fortnight'\)"):
        rate_limit("5/fortnight")


def test_policy_name_that_cannot_go_in_a_header_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="printable ASCII"):
        rate_limit("5/minute", name='lo"gin')
