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

import logging
import sys
from typing import IO, Annotated, cast

import structlog
from fastapi import Depends
from starlette.requests import HTTPConnection
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from fastapi_chassis.observability._direct import _Chain, install_chain
from fastapi_chassis.observability._lines import (
    _SINK,
    _Enrich,
    _JSONRenderer,
    _SinkHandler,
    _SinkLoggerFactory,
)
from fastapi_chassis.observability._redact import REDACTED, Redactor
from fastapi_chassis.settings import ChassisSettings

__all__ = ["REDACTED", "Logger", "Redactor", "configure_logging", "get_logger"]


_NOT_EXTRA = ("color_message", "message", "asctime")


def _drop_formatting_leftovers(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    # Other handlers' formatters add `message`/`asctime` to a record; uvicorn attaches an
    # ANSI-coloured copy of its message as `color_message`. None of them are extra fields.
    for key in _NOT_EXTRA:
        event_dict.pop(key, None)
    return event_dict


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
    install_chain(
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
