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
from fastapi_chassis.middleware.access_log import _FIELDS, AccessLogMiddleware, _line_head
from fastapi_chassis.observability import configure_logging
from fastapi_chassis.observability.logging import direct_lines
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


def _two_ways(fields: dict[str, Any], method: str = "info") -> tuple[str, str]:
    """(direct text, chain text) of one line with `fields`, timestamps blanked."""
    stream = _configure()
    logger = structlog.get_logger("fastapi_chassis.access").bind()
    direct = direct_lines(logger, "request", _FIELDS)
    assert direct is not None
    tail = direct.tail(method)
    head = _line_head(dict(fields))
    assert tail is not None
    assert head is not None
    direct.write(head + tail)
    getattr(logger, method)("request", **fields)
    first, second = stream.getvalue().splitlines()
    return _TIMESTAMP.sub('"timestamp":""', first), _TIMESTAMP.sub('"timestamp":""', second)


text = st.text(max_size=40)
optional_text = st.none() | text


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=text,
    route=optional_text,
    status=st.integers(min_value=0, max_value=999),
    duration=st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False),
    sent=st.integers(min_value=0, max_value=2**64),
    client=optional_text,
    user_agent=optional_text,
    path=st.none() | text,
    disconnected=st.booleans(),
    request_id=optional_text,
    subject=optional_text,
    level=st.sampled_from(["info", "error"]),
)
def test_direct_lines_are_byte_for_byte_the_chain_lines(
    method: str,
    route: str | None,
    status: int,
    duration: float,
    sent: int,
    client: str | None,
    user_agent: str | None,
    path: str | None,
    disconnected: bool,
    request_id: str | None,
    subject: str | None,
    level: str,
) -> None:
    fields: dict[str, Any] = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(duration, 3),
        "bytes": sent,
        "client": client,
        "user_agent": user_agent,
    }
    if path is not None:
        fields["path"] = path
    if disconnected:
        fields["disconnected"] = True
    ids = request_id_var.set(request_id)
    who = subject_var.set(subject)
    try:
        direct, chain = _two_ways(fields, level)
    finally:
        subject_var.reset(who)
        request_id_var.reset(ids)
    assert direct == chain
    json.loads(direct)


def test_unexpected_values_are_left_to_the_chain() -> None:
    assert _line_head({"status": float("nan")}) is None
    assert _line_head({"status": object()}) is None
    assert _line_head({"disconnected": False}) is None


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
