"""Access lines written directly are the lines structlog's processor chain writes.

The access log builds its JSON line itself when the logger runs the chassis JSON chain
unchanged (`direct_lines`). Whatever the values, the text must be exactly what
`logger.info("request", **fields)` produces; when the chain could change the line (bound
contextvars, a redacted key, another level), the access log must fall back to the logger.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_chassis import ChassisSettings, LoggingSettings
from fastapi_chassis._context import request_id_var, subject_var
from fastapi_chassis.middleware.access_log import _FIELDS, AccessLogMiddleware
from fastapi_chassis.observability import configure_logging
from fastapi_chassis.observability._direct import direct_lines
from tests._logs import capture_logs

_TIMESTAMP = re.compile(r'"timestamp":"[^"]*"')


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield from (None for _ in capture_logs())


def _configure(**logging: Any) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(
        ChassisSettings(logging=LoggingSettings(json_output=True, **logging)), stream=stream
    )
    return stream


class _Route:
    def __init__(self, path: str) -> None:
        self.path = path


def _two_ways(
    scope: dict[str, Any], status: int, sent: int, disconnected: bool, elapsed: float = 0.25
) -> tuple[str, str]:
    """(direct text, chain text) of the access line for `scope`, timestamps blanked."""
    stream = _configure()
    middleware = AccessLogMiddleware(_app, clock=lambda: 1.0 + elapsed)
    path = scope["path"]
    middleware._log(scope, "", path, status, sent, 1.0, disconnected=disconnected)
    assert middleware._direct is not None, "the direct path should be in force"
    middleware._direct = None  # now through logger.info / logger.error
    middleware._log(scope, "", path, status, sent, 1.0, disconnected=disconnected)
    first, second = stream.getvalue().splitlines()
    return _TIMESTAMP.sub('"timestamp":""', first), _TIMESTAMP.sub('"timestamp":""', second)


text = st.text(max_size=40)
optional_text = st.none() | text
plain = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
bound_values = st.recursive(
    plain | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
# Names a service might bind: ordinary, sensitive ("token", "password"), or a line's own key.
bound_names = st.sampled_from(
    ["tenant", "job", "api_token", "password", "route", "level", "user agent", "ünï"]
) | st.text(alphabet="abcdefghij_", min_size=1, max_size=8)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=text,
    route=optional_text,
    path=text,
    status=st.integers(min_value=0, max_value=999),
    sent=st.integers(min_value=0, max_value=2**64),
    client=optional_text,
    user_agent=st.none() | st.binary(max_size=40),
    disconnected=st.booleans(),
    # Seconds on the injected clock: sub-millisecond, whole hours, and backwards.
    elapsed=st.floats(min_value=-5, max_value=1e7, allow_nan=False)
    | st.floats(min_value=1e8, max_value=1e14)
    | st.sampled_from([0.0, 1e-7, 999_999_999.9999995]),
    request_id=optional_text,
    subject=optional_text,
    bound=st.dictionaries(bound_names, bound_values, max_size=4),
)
def test_direct_lines_are_byte_for_byte_the_chain_lines(
    method: str,
    route: str | None,
    path: str,
    status: int,
    sent: int,
    client: str | None,
    user_agent: bytes | None,
    disconnected: bool,
    elapsed: float,
    request_id: str | None,
    subject: str | None,
    bound: dict[str, Any],
) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": "/" + path,
        "root_path": "",
        "headers": [] if user_agent is None else [(b"user-agent", user_agent)],
        "client": None if client is None else (client, 1234),
    }
    if route is not None:
        scope["route"] = _Route(route)
    ids = request_id_var.set(request_id)
    who = subject_var.set(subject)
    structlog.contextvars.bind_contextvars(**bound)
    try:
        direct, chain = _two_ways(scope, status, sent, disconnected, elapsed)
    finally:
        structlog.contextvars.clear_contextvars()
        subject_var.reset(who)
        request_id_var.reset(ids)
    assert direct == chain
    line = json.loads(direct)
    assert line["status"] == status
    assert line["level"] == ("error" if status >= 500 else "info")
    assert line["duration_ms"] == round((1.0 + elapsed - 1.0) * 1_000_000) / 1000


@pytest.mark.parametrize("now", [float("nan"), float("inf"), float("-inf")])
def test_a_clock_that_gives_no_number_logs_a_null_duration(now: float) -> None:
    scope = {"type": "http", "method": "GET", "path": "/x", "root_path": "", "headers": []}
    stream = _configure()
    middleware = AccessLogMiddleware(_app, clock=lambda: now)
    middleware._log(scope, "", "/x", 200, 0, 1.0, disconnected=False)
    middleware._direct = None
    middleware._log(scope, "", "/x", 200, 0, 1.0, disconnected=False)
    direct, chain = (
        _TIMESTAMP.sub('"timestamp":""', line) for line in stream.getvalue().splitlines()
    )
    assert direct == chain
    assert json.loads(direct)["duration_ms"] is None


def test_direct_lines_need_the_chassis_json_chain() -> None:
    _configure()
    assert direct_lines(structlog.get_logger("x").bind(), "request", _FIELDS) is not None
    assert direct_lines(structlog.get_logger("x").bind(extra=1), "request", _FIELDS) is None
    configure_logging(ChassisSettings(logging=LoggingSettings(json_output=False)))
    assert direct_lines(structlog.get_logger("x").bind(), "request", _FIELDS) is None


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _call(middleware: AccessLogMiddleware) -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "root_path": "",
        "headers": [(b"user-agent", b"probe")],
        "client": ("10.0.0.1", 1),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    await middleware(scope, receive, send)


@pytest.mark.anyio
async def test_structlog_contextvars_reach_the_line_through_the_chain() -> None:
    stream = _configure()
    structlog.contextvars.bind_contextvars(tenant="acme", api_token="s3cret")
    try:
        await _call(AccessLogMiddleware(_app))
    finally:
        structlog.contextvars.clear_contextvars()
    line = json.loads(stream.getvalue())
    assert line["tenant"] == "acme"
    assert line["api_token"] == "[redacted]"
    assert line["user_agent"] == "probe"


@pytest.mark.anyio
async def test_a_redacted_access_field_is_redacted() -> None:
    stream = _configure(redact_keys=["client"])
    await _call(AccessLogMiddleware(_app))
    assert json.loads(stream.getvalue())["client"] == "[redacted]"


@pytest.mark.anyio
async def test_the_level_filter_applies_to_access_lines() -> None:
    stream = _configure(level="ERROR")
    await _call(AccessLogMiddleware(_app))
    assert stream.getvalue() == ""


class _NoChain:
    """A stand-in logger that fails the test if the access log falls back to the chain."""

    def info(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the access line went through the processor chain")

    error = info


@pytest.mark.anyio
async def test_bound_contextvars_are_rendered_on_the_direct_path() -> None:
    stream = _configure()
    middleware = AccessLogMiddleware(_app)
    await _call(middleware)  # binds the logger and its direct writer
    middleware._logger = _NoChain()  # type: ignore[assignment]
    structlog.contextvars.bind_contextvars(tenant="acme", api_token="s3cret", n=[1, {"a": b"x"}])
    try:
        await _call(middleware)
    finally:
        structlog.contextvars.clear_contextvars()
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["tenant"] == "acme"
    assert line["api_token"] == "[redacted]"
    assert line["n"] == [1, {"a": "x"}]
    keys = list(line)
    # The chain merges bound values right after the event, before level and timestamp.
    assert keys.index("event") < keys.index("tenant") < keys.index("level")


def _both_ways(scope_path: str = "/x") -> None:
    """One access line written directly (when possible), then the same through the chain."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": scope_path,
        "root_path": "",
        "headers": [],
        "client": ("1.2.3.4", 1),
    }
    middleware = AccessLogMiddleware(_app, clock=lambda: 1.25)
    middleware._log(scope, "", scope_path, 200, 2, 1.0, disconnected=False)
    middleware._direct = None
    middleware._log(scope, "", scope_path, 200, 2, 1.0, disconnected=False)


def test_a_processor_inserted_in_place_is_not_skipped() -> None:
    # structlog's processor list can be edited in place after configure_logging(); loggers
    # already bound run the new processor, so the pre-shaped line must not skip it.
    stream = _configure()

    def add_service(logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
        event["service"] = "svc"
        return event

    processors = structlog.get_config()["processors"]
    processors.insert(len(processors) - 1, add_service)
    _both_ways()
    direct, chain = (
        _TIMESTAMP.sub('"timestamp":""', line) for line in stream.getvalue().splitlines()
    )
    assert direct == chain
    assert json.loads(direct)["service"] == "svc"


def test_a_processor_wrapped_in_place_is_not_skipped_even_if_it_compares_equal() -> None:
    # Instrumentation wraps callables in proxies (wrapt's FunctionWrapper) that compare equal
    # to what they wrap: the direct line must notice the replacement all the same.
    stream = _configure()
    processors = structlog.get_config()["processors"]

    class Wrapped:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __eq__(self, other: object) -> bool:
            return other is self.inner or other is self

        __hash__ = object.__hash__

        def __call__(self, logger: Any, name: str, event: dict[str, Any]) -> Any:
            event = self.inner(logger, name, event)
            event["region"] = "eu-1"
            return event

    processors[0] = Wrapped(processors[0])
    _both_ways()
    direct, chain = (
        _TIMESTAMP.sub('"timestamp":""', line) for line in stream.getvalue().splitlines()
    )
    assert direct == chain
    assert json.loads(direct)["region"] == "eu-1"


def test_structlog_named_context_variables_of_ones_own_are_merged_and_redacted() -> None:
    # merge_contextvars takes every context variable named structlog_*, not only those
    # structlog.contextvars created.
    import contextvars

    stream = _configure(redact_keys=["token"])
    own: contextvars.ContextVar[Any] = contextvars.ContextVar("structlog_api_token")
    reset = own.set("s3cret")
    try:
        _both_ways()
    finally:
        own.reset(reset)
    direct, chain = (
        _TIMESTAMP.sub('"timestamp":""', line) for line in stream.getvalue().splitlines()
    )
    assert direct == chain
    assert json.loads(direct)["api_token"] == "[redacted]"
