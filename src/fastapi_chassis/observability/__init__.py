"""Observability: structured logging, Prometheus metrics and OpenTelemetry tracing."""

from fastapi_chassis.observability.logging import (
    REDACTED,
    Logger,
    Redactor,
    configure_logging,
    get_logger,
)

__all__ = ["REDACTED", "Logger", "Redactor", "configure_logging", "get_logger"]
