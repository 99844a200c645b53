"""Observability: structured logging, Prometheus metrics and OpenTelemetry tracing."""
