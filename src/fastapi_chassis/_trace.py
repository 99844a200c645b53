"""The current OpenTelemetry trace and span ids, for logs and error bodies.

Kept apart from `observability.tracing` and free of chassis imports so `errors` and logging can
use it without import cycles. Without the OpenTelemetry API installed both functions return None
after one failed import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["current_span_id", "current_trace_id"]

# opentelemetry.trace.get_current_span once resolved; False when the API is not installed.
_get_current_span: Callable[[], Any] | bool | None = None


def _span_getter() -> Callable[[], Any] | None:
    global _get_current_span
    getter = _get_current_span
    if getter is None:
        try:
            from opentelemetry.trace import get_current_span
        except ImportError:
            _get_current_span = False
            return None
        _get_current_span = getter = get_current_span
    return getter if callable(getter) else None


def current_trace_id() -> str | None:
    """The 32-hex trace id of the current span, or None without a valid span."""
    getter = _span_getter()
    if getter is None:
        return None
    context = getter().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_span_id() -> str | None:
    """The 16-hex id of the current span, or None without a valid span."""
    getter = _span_getter()
    if getter is None:
        return None
    context = getter().get_span_context()
    return format(context.span_id, "016x") if context.is_valid else None
