from __future__ import annotations

import io
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from unittest.mock import patch

import anyio
import anyio.lowlevel
import httpx
import pytest
import structlog
from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from fastapi_chassis import ChassisSettings, LoggingSettings, build_app
from fastapi_chassis._context import subject_var
from fastapi_chassis.observability import REDACTED, Logger, Redactor, _lines, configure_logging
from fastapi_chassis.observability._lines import _Enrich
from tests._logs import LogCapture, SetRequestId, capture_logs, rid
from tests.conftest import ROOT, subprocess_env
from tests.examples._run import run_python

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JSON = ChassisSettings(logging=LoggingSettings(json_output=True))


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    yield from capture_logs()


def _app(settings: ChassisSettings = JSON) -> FastAPI:
    app = build_app(settings)
    app.add_middleware(SetRequestId)
    return app


@pytest.mark.anyio
async def test_every_line_carries_its_own_request_id_under_300_concurrent_requests(
    logs: LogCapture,
) -> None:
    app = _app()

    @app.get("/work/{n}")
    async def work(n: int, log: Logger, tasks: BackgroundTasks) -> dict[str, int]:
        log.info("started", n=n)
        await anyio.lowlevel.checkpoint()  # let the other requests interleave
        structlog.get_logger("lib").info("middle", n=n)
        await anyio.lowlevel.checkpoint()
        logging.getLogger("stdlib.lib").info("stdlib %s", n)
        tasks.add_task(lambda: structlog.get_logger("bg").info("background", n=n))
        return {"n": n}

    logs.configure()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def one(n: int) -> None:
            response = await client.get(f"/work/{n}", headers={"x-request-id": rid(n)})
            assert response.json() == {"n": n}

        async with anyio.create_task_group() as group:
            for n in range(300):
                group.start_soon(one, n)

    by_event: dict[str, int] = {}
    for line in logs.lines():
        if line["event"] in ("started", "middle", "background"):
            assert line["request_id"] == rid(line["n"]), line
            by_event[line["event"]] = by_event.get(line["event"], 0) + 1
        elif line["event"].startswith("stdlib "):
            assert line["request_id"] == rid(int(line["event"].split()[1])), line
            by_event["stdlib"] = by_event.get("stdlib", 0) + 1
    assert by_event == {"started": 300, "middle": 300, "background": 300, "stdlib": 300}
    access = logs.access()
    assert len(access) == 300
    assert {line["request_id"] for line in access} == {rid(n) for n in range(300)}


def test_streaming_generators_and_threadpool_tasks_keep_the_request_id(logs: LogCapture) -> None:
    app = _app()

    def sync_chunks() -> Iterator[bytes]:
        for i in range(2):
            structlog.get_logger("gen").info("sync chunk", i=i)
            yield b"s"

    async def async_chunks() -> Any:
        for i in range(2):
            structlog.get_logger("gen").info("async chunk", i=i)
            yield b"a"

    def sync_task() -> None:
        structlog.get_logger("bg").info("sync task")

    @app.get("/sync")
    def sync_stream(tasks: BackgroundTasks) -> StreamingResponse:
        tasks.add_task(sync_task)
        return StreamingResponse(sync_chunks(), background=tasks)

    @app.get("/async")
    async def async_stream() -> StreamingResponse:
        return StreamingResponse(async_chunks())

    logs.configure()
    with TestClient(app) as client:
        assert client.get("/sync", headers={"x-request-id": rid(1)}).content == b"ss"
        assert client.get("/async", headers={"x-request-id": rid(2)}).content == b"aa"

    seen = {(line["event"], line.get("request_id")) for line in logs.lines()}
    assert ("sync chunk", rid(1)) in seen
    assert ("sync task", rid(1)) in seen
    assert ("async chunk", rid(2)) in seen
    assert len(logs.events("sync chunk")) == 2


def test_trace_and_span_ids_are_those_of_the_current_span(logs: LogCapture) -> None:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    app = _app()

    @app.get("/traced")
    async def traced(log: Logger) -> dict[str, bool]:
        with tracer.start_as_current_span("work"):
            log.info("inside span")
        log.info("outside span")
        return {"ok": True}

    logs.configure()
    with TestClient(app) as client:
        client.get("/traced")

    (span,) = exporter.get_finished_spans()
    (inside,) = logs.events("inside span")
    assert inside["trace_id"] == f"{span.context.trace_id:032x}"
    assert inside["span_id"] == f"{span.context.span_id:016x}"
    (outside,) = logs.events("outside span")
    assert "trace_id" not in outside
    assert "span_id" not in outside


def test_subject_from_auth_context_is_on_the_line(logs: LogCapture) -> None:
    logs.configure()
    token = subject_var.set("user-42")
    try:
        structlog.get_logger("t").info("acting")
    finally:
        subject_var.reset(token)
    structlog.get_logger("t").info("anonymous")
    assert logs.events("acting")[0]["subject"] == "user-42"
    assert "subject" not in logs.events("anonymous")[0]


def test_nested_secrets_headers_and_secret_values_are_redacted(logs: LogCapture) -> None:
    logs.configure()
    payload = {
        "user": {"name": "ada", "Password": "p4ss", "profile": [{"API-KEY": "k1"}]},
        "tokens": ["t1"],
    }
    headers = [(b"Authorization", b"Bearer abc"), (b"accept", b"json"), ("Cookie", "s=1")]
    structlog.get_logger("t").info(
        "login",
        payload=payload,
        headers=headers,
        access_token="tk-9f2",
        X_Api_Key="key",
        config={"dsn": SecretStr("postgres://u:pw@h/db")},
        raw_header_map={b"Set-Cookie": b"id=1"},
        count=3,
    )
    (line,) = logs.events("login")
    assert line["payload"] == {
        "user": {"name": "ada", "Password": REDACTED, "profile": [{"API-KEY": REDACTED}]},
        "tokens": REDACTED,
    }
    assert line["headers"] == [
        ["Authorization", REDACTED],
        ["accept", "json"],
        ["Cookie", REDACTED],
    ]
    assert line["access_token"] == REDACTED
    assert line["X_Api_Key"] == REDACTED
    assert line["config"] == {"dsn": REDACTED}
    assert line["raw_header_map"] == {"Set-Cookie": REDACTED}
    assert line["count"] == 3
    for secret in ("p4ss", "k1", "abc", "s=1", "tk-9f2", "pw@h", "id=1"):
        assert secret not in logs.text
    # The caller's objects are left as they were.
    assert payload["user"]["Password"] == "p4ss"  # type: ignore[index]
    assert headers[0] == (b"Authorization", b"Bearer abc")


def test_redaction_applies_to_stdlib_extra_fields(logs: LogCapture) -> None:
    logs.configure()
    logging.getLogger("thirdparty").warning("calling api", extra={"api_key": "k-123"})
    (line,) = logs.events("calling api")
    assert line["api_key"] == REDACTED
    assert "k-123" not in logs.text


def test_redactor_uses_configured_keys_only() -> None:
    redact = Redactor(["session"])
    event = redact(None, "info", {"Session-Id": "s", "password": "p", "event": "session"})
    assert event == {"Session-Id": REDACTED, "password": "p", "event": "session"}
    assert redact.is_sensitive("MY_SESSION")
    assert not redact.is_sensitive("user")


def test_stdlib_records_render_in_the_same_json_format(logs: LogCapture) -> None:
    logs.configure()
    structlog.get_logger("native").info("from structlog", port=8000)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
    logging.getLogger("fastapi_chassis.errors").warning("slow %s", "thing")

    native, uvicorn, errors = logs.lines()
    for line in (native, uvicorn, errors):
        assert ISO_UTC.match(line["timestamp"]), line
        assert set(line) >= {"event", "level", "logger", "timestamp"}
    assert (native["logger"], native["level"], native["port"]) == ("native", "info", 8000)
    assert uvicorn == {
        "event": "Started server process [7]",
        "level": "info",
        "logger": "uvicorn.error",
        "timestamp": uvicorn["timestamp"],
    }
    assert (errors["logger"], errors["level"], errors["event"]) == (
        "fastapi_chassis.errors",
        "warning",
        "slow thing",
    )


def _fail_with_secret_local() -> None:
    db_password = "hunter2-local"
    raise RuntimeError(f"cannot connect as {len(db_password)}")


def test_json_tracebacks_are_structured_and_leave_out_frame_locals(logs: LogCapture) -> None:
    logs.configure()
    try:
        _fail_with_secret_local()
    except RuntimeError:
        structlog.get_logger("t").exception("native failure")
        logging.getLogger("fastapi_chassis.errors").exception("stdlib failure")

    native, stdlib = logs.lines()
    for line in (native, stdlib):
        assert line["level"] == "error"
        (exc,) = line["exception"]
        assert exc["exc_type"] == "RuntimeError"
        assert exc["frames"][-1]["name"] == "_fail_with_secret_local"
        assert all("locals" not in frame for frame in exc["frames"])
    assert "hunter2-local" not in logs.text


def test_level_comes_from_settings(logs: LogCapture) -> None:
    logs.configure(ChassisSettings(logging=LoggingSettings(json_output=True, level="WARNING")))
    structlog.get_logger("t").info("quiet")
    logging.getLogger("lib").info("quiet too")
    structlog.get_logger("t").warning("loud")
    logging.getLogger("lib").error("loud too")
    assert [line["event"] for line in logs.lines()] == ["loud", "loud too"]


def test_dev_renders_readable_console_lines(logs: LogCapture) -> None:
    logs.configure(ChassisSettings(environment="dev"))
    structlog.get_logger("t").info("hello", user="ada", password="x")
    text = logs.text
    assert "hello" in text
    assert "user=ada" in text
    assert "password=[redacted]" in text
    assert not text.lstrip().startswith("{")
    assert "\x1b[" not in text  # no colours when the stream is not a terminal


def test_configuring_twice_keeps_one_handler_and_replaces_basic_config() -> None:
    root = logging.getLogger()
    kept = logging.NullHandler()
    root.addHandler(kept)
    logging.basicConfig(force=False)
    try:
        before = set(root.handlers)
        configure_logging(JSON)
        configure_logging(JSON)
        added = set(root.handlers) - before
        assert len(added) == 1
        assert kept in root.handlers
        assert not [h for h in root.handlers if type(h) is logging.StreamHandler]
        configure_logging(JSON)
        assert len(set(root.handlers) - before) == 1
    finally:
        root.removeHandler(kept)
        configure_logging(ChassisSettings())


def test_uvicorn_access_log_is_silenced_while_the_chassis_access_log_is_on() -> None:
    access = logging.getLogger("uvicorn.access")
    try:
        access.addHandler(logging.NullHandler())
        configure_logging(JSON)
        assert not access.hasHandlers()  # uvicorn then skips its access line entirely
        off = ChassisSettings(logging=LoggingSettings(json_output=True, access_log=False))
        configure_logging(off)
        assert access.hasHandlers()
        assert access.propagate
    finally:
        configure_logging(ChassisSettings())


def test_logger_dependency_is_named_after_the_endpoint_module_and_bound_to_the_route(
    logs: LogCapture,
) -> None:
    app = _app()

    @app.get("/notes/{note_id}")
    async def note(note_id: int, log: Logger) -> dict[str, int]:
        log.info("note read", note_id=note_id)
        return {"id": note_id}

    logs.configure()
    with TestClient(app) as client:
        client.get("/notes/7", headers={"x-request-id": rid(7)})
    (line,) = logs.events("note read")
    assert line["logger"] == __name__
    assert line["route"] == "/notes/{note_id}"
    assert (line["note_id"], line["request_id"]) == (7, rid(7))


def test_install_leaves_logging_alone_when_configure_is_off() -> None:
    marker = [structlog.processors.JSONRenderer()]
    structlog.configure(processors=marker)
    root_handlers = list(logging.getLogger().handlers)
    try:
        build_app(ChassisSettings(logging=LoggingSettings(configure=False)))
        assert structlog.get_config()["processors"] is marker
        assert logging.getLogger().handlers == root_handlers
        build_app(ChassisSettings())
        assert structlog.get_config()["processors"] is not marker
    finally:
        configure_logging(ChassisSettings())


def test_structured_logs_example_runs_and_masks_the_password() -> None:
    code = (
        "from fastapi.testclient import TestClient\n"
        "from examples.structured_logs import app\n"
        "with TestClient(app) as c:\n"
        "    body = {'user': 'ada', 'password': 'hunter2'}\n"
        "    assert c.post('/login', json=body).json() == {'ok': True}\n"
    )
    stdout = run_python(code)
    lines = [json.loads(line) for line in stdout.splitlines()]
    (attempt,) = [line for line in lines if line["event"] == "login attempt"]
    assert attempt["credentials"] == {"user": "ada", "password": REDACTED}
    assert attempt["route"] == "/login"
    (access,) = [line for line in lines if line.get("logger") == "fastapi_chassis.access"]
    assert (access["route"], access["status"]) == ("/login", 200)
    assert "hunter2" not in stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_under_uvicorn_server_lines_and_access_lines_share_the_format() -> None:
    pytest.importorskip("uvicorn")
    port = _free_port()
    code = (
        "import uvicorn\n"
        f"uvicorn.run('examples.structured_logs:app', host='127.0.0.1', port={port})\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        response = None
        for _ in range(100):
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/login",
                    json={"user": "ada", "password": "hunter2"},
                    headers={"user-agent": "probe/1"},
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response is not None
        assert response.status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    lines = [json.loads(line) for line in (out + err).splitlines() if line.startswith("{")]
    assert len(lines) == len((out + err).strip().splitlines()), out + err
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "fastapi_chassis.access", "examples.structured_logs"} <= loggers
    assert "uvicorn.access" not in loggers
    (access,) = [line for line in lines if line["logger"] == "fastapi_chassis.access"]
    assert (access["route"], access["client"], access["user_agent"]) == (
        "/login",
        "127.0.0.1",
        "probe/1",
    )
    assert "hunter2" not in out + err


class _BrokenPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError("reader went away")


def test_a_broken_log_stream_does_not_fail_the_request() -> None:
    app = _app()

    @app.get("/ok")
    async def ok(log: Logger) -> dict[str, bool]:
        log.info("about to answer")
        return {"ok": True}

    configure_logging(JSON, stream=_BrokenPipe())
    try:
        with TestClient(app) as client:
            assert client.get("/ok").json() == {"ok": True}
    finally:
        configure_logging(ChassisSettings())


@settings(max_examples=300)
@given(now=st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.integers(0, 4 * 10**9))
def test_the_timestamp_is_utc_with_the_milliseconds_cut_not_rounded(now: float) -> None:
    enrich = _Enrich()
    with patch.object(_lines.time, "time", return_value=now):
        stamp = enrich.timestamp()
    second = int(now)
    millis = int((now - second) * 1000)
    expected = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert stamp == f"{expected}.{min(millis, 999):03d}Z"
    assert ISO_UTC.match(stamp)
