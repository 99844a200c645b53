"""Observability: structured logging (and, with their extras, metrics and tracing)."""

from fastapi_chassis.observability.logging import (
    REDACTED,
    Logger,
    Redactor,
    configure_logging,
    get_logger,
)

__all__ = ["REDACTED", "Logger", "Redactor", "configure_logging", "get_logger"]
