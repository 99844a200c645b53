"""Pre-shaped JSON lines: the processor chain's output without structlog's per-call work.

`configure_logging()` records the JSON chain it installs (`install_chain`); `direct_lines()`
hands a caller that knows its line's fields (the access log) a `DirectLines` when a logger is
bound from that chain unchanged, and None otherwise.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, MutableMapping
from operator import is_
from typing import Any

from structlog.contextvars import merge_contextvars
from structlog.typing import Processor

from fastapi_chassis._context import request_id_var, subject_var
from fastapi_chassis.observability._lines import (
    _LEVEL_NAMES,
    _Enrich,
    _JSONRenderer,
    _SinkLogger,
    _trace_ids,
)
from fastapi_chassis.observability._redact import REDACTED, Redactor

__all__ = ["DirectLines", "direct_lines", "install_chain"]


class _Chain:
    """The JSON processor chain `configure_logging()` installed, for `direct_lines()`."""

    __slots__ = (
        "enrich",
        "installed",
        "level",
        "processors",
        "redactor",
        "renderer",
        "wrapper_class",
    )

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
        #: The chain as installed; structlog's list can be changed in place later.
        self.installed = tuple(processors)
        self.wrapper_class = wrapper_class
        self.level = level
        self.enrich = enrich
        self.redactor = redactor
        self.renderer = renderer


_installed: _Chain | None = None


def install_chain(chain: _Chain | None) -> None:
    """Record the JSON chain `configure_logging()` installed (None: not a JSON chain)."""
    global _installed
    _installed = chain


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

    __slots__ = (
        "_chain",
        "_encode",
        "_enrich",
        "_event",
        "_levels",
        "_redactor",
        "_reserved",
        "_wrapped",
        "write",
    )

    escape = staticmethod(_escape)

    def __init__(
        self, chain: _Chain, wrapped: _SinkLogger, event: str, keys: Iterable[str]
    ) -> None:
        self._chain = chain
        self._enrich = chain.enrich
        self._redactor = chain.redactor
        self._encode = chain.renderer._encode
        self._wrapped = wrapped
        #: Writes a finished line to the sink, as the logger would.
        self.write = wrapped._sink.write_quietly
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

        Empty when the level is filtered out; None when the line cannot be rendered here (the
        processor list was changed in place, a bound value named like a field, non-text ids):
        log through the logger instead.
        """
        level = self._levels.get(method_name)
        if level is None:
            return ""
        chain = self._chain
        # The same objects, compared in C. Not `==`: a wrapper put in place of a processor
        # (wrapt's FunctionWrapper, a weakref proxy) can compare equal to it.
        live = chain.processors
        if len(live) != len(chain.installed) or not all(map(is_, live, chain.installed)):
            return None
        tail = self._event
        # Every `structlog_*` context variable, as `merge_contextvars` finds them.
        bound = merge_contextvars(self._wrapped, method_name, {})
        if bound:
            parts = [tail]
            if not self._bound_parts(bound, parts):
                return None
            tail = "".join(parts)
        tail = f'{tail}{level}{self._enrich.timestamp()}"'
        request_id = request_id_var.get()
        subject = subject_var.get()
        trace = _trace_ids()
        if subject is None and trace is None and type(request_id) is str:
            return f'{tail},"request_id":{_escape(request_id)}}}'  # the usual request's line
        if request_id is not None:
            if type(request_id) is not str:
                return None
            tail = f'{tail},"request_id":{_escape(request_id)}'
        if subject is not None:
            if type(subject) is not str:
                return None
            tail = f'{tail},"subject":{_escape(subject)}'
        if trace is not None:
            tail = f'{tail},"trace_id":"{trace[0]}","span_id":"{trace[1]}"'
        return tail + "}"

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


_PLAIN_VALUES = frozenset((str, int, float, bool, type(None)))


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
