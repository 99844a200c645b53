"""The parts of a chassis log line: enrich, render, and write through one locked sink.

Used by `configure_logging()` (which puts them into structlog's processor chain and the
standard library's root handler) and by the pre-shaped access lines in `_direct`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from fastapi_chassis._context import request_id_var, subject_var


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
        event_dict["timestamp"] = self.timestamp()
        request_id = request_id_var.get()
        if request_id is not None:
            event_dict.setdefault("request_id", request_id)
        subject = subject_var.get()
        if subject is not None:
            event_dict.setdefault("subject", subject)
        trace = _trace_ids()
        if trace is not None:
            event_dict.setdefault("trace_id", trace[0])
            event_dict.setdefault("span_id", trace[1])
        return event_dict

    def timestamp(self) -> str:
        """Now, as ISO 8601 UTC with milliseconds (`2026-01-31T12:00:00.123Z`)."""
        now = time.time()
        second = int(now)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)))
            self._second = cached
        return f"{cached[1]}{MILLIS[int((now - second) * 1000)]}Z"


#: "000" to "999" by number, for a timestamp's milliseconds: an index instead of formatting an
#: int with a format spec per line. One entry more: a float fraction can round up to 1000.
MILLIS = (*(f"{n:03d}" for n in range(1000)), "999")


def _trace_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, or None outside a valid span."""
    # OpenTelemetry is optional: a process that never imported it has no spans to report.
    otel = sys.modules.get("opentelemetry.trace")
    if otel is None:
        return None
    span = otel.get_current_span()
    if span is otel.INVALID_SPAN:  # no span: most requests of an untraced service
        return None
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


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

    def write_quietly(self, line: str) -> None:
        """`write()`, dropping the line when the stream is closed or broken."""
        try:
            self.write(line)
        except (OSError, ValueError):
            # A closed or broken stream (stdout piped into `head`, interpreter shutdown) must
            # not turn a log call into a failed request; the standard library drops it too.
            return


class _SinkLogger:
    """The wrapped logger behind every structlog logger: a name and the shared sink."""

    __slots__ = ("_sink", "name")

    def __init__(self, sink: _Sink, name: str | None) -> None:
        self._sink = sink
        self.name = name

    def msg(self, message: str) -> None:
        self._sink.write_quietly(message)

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
