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
from collections.abc import Callable, Iterable, MutableMapping
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
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        return f"{cached[1]}.{int((now - second) * 1000):03d}Z"


def _trace_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, or None outside a valid span."""
    # OpenTelemetry is optional: a process that never imported it has no spans to report.
    otel = sys.modules.get("opentelemetry.trace")
    if otel is None:
        return None
    context = otel.get_current_span().get_span_context()
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


class _Chain:
    """The JSON processor chain `configure_logging()` installed, for `direct_writer()`."""

    __slots__ = ("enrich", "level", "processors", "redactor", "renderer", "wrapper_class")

    def __init__(
        self,
        processors: list[Processor],
        wrapper_class: type[Any],
        level: int,
        enrich: _Enrich,
        redactor: Redactor,
        renderer: _JSONRenderer,
    ) -> None:
        self.processors = processors
        self.wrapper_class = wrapper_class
        self.level = level
        self.enrich = enrich
        self.redactor = redactor
        self.renderer = renderer


_installed: _Chain | None = None
_LEVELS = {"info": logging.INFO, "error": logging.ERROR}

#: Keys `_Enrich` may add after a line's own fields, in the order it adds them.
_ENRICHED_KEYS = (
    *("event", "level", "logger", "timestamp"),
    *("request_id", "subject", "trace_id", "span_id"),
)
_escape: Callable[[str], str] = json.encoder.encode_basestring_ascii  # what the encoder uses


class DirectLines:
    """Pre-shaped JSON lines for one logger of the installed chain, one event name.

    A caller that knows its line's fields (the access log) writes the opening part itself with
    `escape()` and asks `tail()` for the rest: the event, values bound with
    `structlog.contextvars`, level, logger, timestamp and the request's context, in the order
    and with the redaction the processor chain applies. The line is byte for byte what
    `logger.info(event, **fields)` writes, without structlog's per-call machinery or the event
    dictionary. Built by `direct_lines()` only when that holds.
    """

    __slots__ = ("_encode", "_enrich", "_event", "_levels", "_redactor", "_reserved", "_wrapped")

    escape = staticmethod(_escape)

    def __init__(
        self, chain: _Chain, wrapped: _SinkLogger, event: str, keys: Iterable[str]
    ) -> None:
        self._enrich = chain.enrich
        self._redactor = chain.redactor
        self._encode = chain.renderer._encode
        self._wrapped = wrapped
        self._event = f',"event":{_escape(event)}'
        # A bound value under one of these names is not simply appended by the chain.
        self._reserved = frozenset((*keys, *_ENRICHED_KEYS))
        logger = "" if wrapped.name is None else f',"logger":{_escape(wrapped.name)}'
        #: method name -> the part from the level to the timestamp's opening quote.
        self._levels = {
            method: f',"level":{_escape(level_name)}{logger},"timestamp":"'
            for method, level in _LEVELS.items()
            if level >= chain.level
            for level_name in [_LEVEL_NAMES.get(method, method)]
        }

    def tail(self, method_name: str) -> str | None:
        """The line's end for a `method_name` ("info", "error") call, after its own fields.

        Empty when the level is filtered out; None when the context cannot be rendered here
        (a bound value named like a field, non-text ids): log through the logger instead.
        """
        level = self._levels.get(method_name)
        if level is None:
            return ""
        parts = [self._event]
        if _structlog_contextvars_created():
            bound = structlog.contextvars.merge_contextvars(self._wrapped, method_name, {})
            if bound and not self._bound_parts(bound, parts):
                return None
        parts += (level, self._enrich.timestamp(), '"')
        for key, var in (("request_id", request_id_var), ("subject", subject_var)):
            value = var.get()
            if value is not None:
                if type(value) is not str:
                    return None
                parts.append(f',"{key}":{_escape(value)}')
        trace = _trace_ids()
        if trace is not None:
            parts.append(f',"trace_id":"{trace[0]}","span_id":"{trace[1]}"')
        parts.append("}")
        return "".join(parts)

    def _bound_parts(self, bound: MutableMapping[str, Any], parts: list[str]) -> bool:
        """Append `bound` (structlog contextvars) as the chain renders them; False: cannot."""
        if not bound.keys().isdisjoint(self._reserved):
            return False
        redactor = self._redactor
        for key, value in bound.items():
            if type(key) is not str:
                return False
            if redactor.is_sensitive(key):
                value = REDACTED
            elif type(value) not in _PLAIN_VALUES:
                value = redactor._scrub(value, 0)
            parts.append(f",{_escape(key)}:{self._encode(value)}")
        return True

    def write(self, line: str) -> None:
        """Write a finished line to the sink."""
        self._wrapped.msg(line)


_PLAIN_VALUES = frozenset((str, int, float, bool, type(None)))


def _structlog_contextvars_created() -> bool:
    """Whether `structlog.contextvars` may hold values (it ever created a variable)."""
    # structlog registers every context variable it creates here; none created means none
    # bound, without walking the whole context as `merge_contextvars` does.
    created = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
    return not isinstance(created, dict) or bool(created)


def direct_lines(logger: Any, event: str, keys: Iterable[str]) -> DirectLines | None:
    """`DirectLines` for `logger`, when its lines come from the chassis JSON chain unchanged.

    That is: bound from the processors, level filter and sink `configure_logging()` installed,
    with an empty bound context, and none of the line's own keys (`keys`, plus what the chain
    adds) redacted. Otherwise None: log through `logger` as usual.
    """
    chain = _installed
    if (
        chain is None
        or getattr(logger, "_processors", None) is not chain.processors
        or type(logger) is not chain.wrapper_class
        or getattr(logger, "_context", None)
        or not isinstance(getattr(logger, "_logger", None), _SinkLogger)
        or any(chain.redactor.is_sensitive(key) for key in (*keys, *_ENRICHED_KEYS))
    ):
        return None
    return DirectLines(chain, logger._logger, event, keys)


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

    enrich, redactor = _Enrich(), Redactor(config.redact_keys)
    renderer = _renderer(settings.json_logs, stream)
    tail: list[Processor] = [enrich, redactor, renderer]
    processors: list[Processor] = [structlog.contextvars.merge_contextvars, *tail]
    wrapper_class = structlog.make_filtering_bound_logger(level)
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper_class,
        logger_factory=_SinkLoggerFactory(_SINK),
        cache_logger_on_first_use=True,
    )
    global _installed
    _installed = (
        _Chain(processors, wrapper_class, level, enrich, redactor, renderer)
        if isinstance(renderer, _JSONRenderer)
        else None
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
