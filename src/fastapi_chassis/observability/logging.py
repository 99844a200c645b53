"""Structured logging: structlog JSON (or console) lines carrying the request's context.

`configure_logging(settings)` sets up structlog and the standard library's root logger so that
every line a service writes — its own, uvicorn's, third-party libraries' — has one format, the
request id and trace ids of the request being served, and no secrets:

    from fastapi_chassis import ChassisSettings
    from fastapi_chassis.observability import configure_logging
    import structlog

    configure_logging(ChassisSettings(environment="prod"))
    structlog.get_logger(__name__).info("started", port=8000)

structlog loggers render and write lines themselves (no `logging.LogRecord` per line); records
from the standard library pass through structlog's `ProcessorFormatter` with the same processors
and renderer, and both write through one locked sink.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Annotated, Any, cast

import structlog
from fastapi import Depends
from starlette.requests import HTTPConnection
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from fastapi_chassis._context import request_id_var, subject_var
from fastapi_chassis.observability._redact import REDACTED, Redactor
from fastapi_chassis.settings import ChassisSettings

__all__ = ["REDACTED", "Logger", "Redactor", "configure_logging", "get_logger"]


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return repr(value)


_LEVEL_NAMES = {"warn": "warning", "exception": "error", "err": "error", "fatal": "critical"}


class _Enrich:
    """Level, logger name, ISO 8601 UTC timestamp and the request's context, in one step.

    The formatted second of the timestamp is reused; only milliseconds are formatted per line.
    """

    __slots__ = ("_second",)

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name)
        name = getattr(logger, "name", None)
        if name is not None:
            event_dict.setdefault("logger", name)
        now = time.time()
        second = int(now)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        event_dict["timestamp"] = f"{cached[1]}.{int((now - second) * 1000):03d}Z"

        request_id = request_id_var.get()
        if request_id is not None:
            event_dict.setdefault("request_id", request_id)
        subject = subject_var.get()
        if subject is not None:
            event_dict.setdefault("subject", subject)
        # OpenTelemetry is optional: a process that never imported it has no spans to report.
        otel = sys.modules.get("opentelemetry.trace")
        if otel is not None:
            context = otel.get_current_span().get_span_context()
            if context.is_valid:
                event_dict.setdefault("trace_id", f"{context.trace_id:032x}")
                event_dict.setdefault("span_id", f"{context.span_id:016x}")
        return event_dict


def _compact_encoder() -> Callable[[Any], str]:
    """Compact JSON text, ASCII-escaped; the C encoder built once instead of per line.

    `JSONEncoder.encode` builds a fresh C encoder (and a circular-reference memo) on every
    call. Events reach the renderer after the redactor, which copies containers and cuts
    them at a fixed depth, so no circular structure arrives and the memo is not needed.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator on this interpreter
        return json.JSONEncoder(separators=(",", ":"), default=_json_default).encode
    chunks = make(
        None,
        _json_default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


class _JSONRenderer:
    """Compact JSON lines; tracebacks as structured data without frame locals."""

    __slots__ = ("_encode", "_exceptions")

    def __init__(self) -> None:
        self._encode = _compact_encoder()
        # Frame locals stay out of tracebacks: they are where secrets live.
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        self._exceptions = structlog.processors.ExceptionRenderer(transformer)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        if "exc_info" in event_dict:
            event_dict = self._exceptions(logger, method_name, event_dict)
        return self._encode(event_dict)


_NOT_EXTRA = ("color_message", "message", "asctime")


def _drop_formatting_leftovers(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    # Other handlers' formatters add `message`/`asctime` to a record; uvicorn attaches an
    # ANSI-coloured copy of its message as `color_message`. None of them are extra fields.
    for key in _NOT_EXTRA:
        event_dict.pop(key, None)
    return event_dict


class _Sink:
    """Where rendered lines go: one lock shared by structlog and the standard library."""

    __slots__ = ("_lock", "stream")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: None: `sys.stdout` as it is at write time (follows test capture and redirection).
        self.stream: IO[str] | None = None

    def write(self, line: str) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()


class _SinkLogger:
    """The wrapped logger behind every structlog logger: a name and the shared sink."""

    __slots__ = ("_sink", "name")

    def __init__(self, sink: _Sink, name: str | None) -> None:
        self._sink = sink
        self.name = name

    def msg(self, message: str) -> None:
        try:
            self._sink.write(message)
        except (OSError, ValueError):
            # A closed or broken stream (stdout piped into `head`, interpreter shutdown) must
            # not turn a log call into a failed request; the standard library drops it too.
            return

    log = debug = info = warn = warning = error = err = critical = fatal = exception = msg
    failure = msg


class _SinkLoggerFactory:
    __slots__ = ("_sink",)

    def __init__(self, sink: _Sink) -> None:
        self._sink = sink

    def __call__(self, *args: Any) -> _SinkLogger:
        name = args[0] if args and isinstance(args[0], str) else None
        return _SinkLogger(self._sink, name)


class _SinkHandler(logging.Handler):
    """Root handler writing standard-library records through the shared sink."""

    def __init__(self, sink: _Sink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.write(self.format(record))
        except Exception:
            self.handleError(record)


_SINK = _Sink()

_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error")


def _renderer(json_lines: bool, stream: IO[str] | None) -> Processor:
    if json_lines:
        return _JSONRenderer()
    target = stream if stream is not None else sys.stdout
    colors = bool(getattr(target, "isatty", lambda: False)())
    return structlog.dev.ConsoleRenderer(
        colors=colors, exception_formatter=structlog.dev.plain_traceback
    )


def configure_logging(settings: ChassisSettings, *, stream: IO[str] | None = None) -> None:
    """Configure structlog and the standard library's logging for the whole process.

    JSON lines when `settings.json_logs` (prod default), a readable console format otherwise;
    level from `settings.logging.level`. The root logger gets one chassis handler (calling this
    again replaces it, and removes plain `StreamHandler`s such as `logging.basicConfig`'s);
    uvicorn's loggers propagate to it, and `uvicorn.access` is silenced while the chassis
    access log is on. Lines go to `stream`, by default `sys.stdout` at the time of writing.
    """
    config = settings.logging
    level = logging.getLevelName(config.level)
    _SINK.stream = stream

    tail: list[Processor] = [
        _Enrich(),
        Redactor(config.redact_keys),
        _renderer(settings.json_logs, stream),
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_SinkLoggerFactory(_SINK),
        cache_logger_on_first_use=True,
    )

    handler = _SinkHandler(_SINK)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                _drop_formatting_leftovers,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _SinkHandler) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    # With no handler and no propagation uvicorn skips building its access line at all.
    access.propagate = not config.access_log


async def get_logger(connection: HTTPConnection) -> FilteringBoundLogger:
    """Dependency: a logger named after the endpoint's module, bound with the route template.

    Lines also carry `request_id` (and `trace_id`, `span_id`, `subject` when known) from the
    request context. Outside requests use `structlog.get_logger(__name__)`. (A coroutine only so
    FastAPI does not send this cheap call to its thread pool.)
    """
    endpoint = connection.scope.get("endpoint")
    name = getattr(endpoint, "__module__", None) or "fastapi_chassis"
    logger = cast(FilteringBoundLogger, structlog.get_logger(name))
    route = getattr(connection.scope.get("route"), "path", None)
    if isinstance(route, str):
        return logger.bind(route=route)
    return logger.bind()


Logger = Annotated[FilteringBoundLogger, Depends(get_logger)]
"""Dependency alias: a handler parameter `log: Logger` gets the request's bound logger."""
