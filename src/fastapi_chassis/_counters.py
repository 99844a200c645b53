"""The chassis' own counters, reported by other blocks: problems, auth failures, rate limits.

Free of chassis imports so `errors`, auth and rate limiting can call these without import
cycles. Until `install_metrics` activates a metrics set, each call is one global read.
"""

from __future__ import annotations

from typing import Any

__all__ = ["activate", "count_auth_failure", "count_problem", "count_rate_limited"]

# The RequestMetrics of observability.metrics once metrics are on; None costs nothing.
_active: Any = None


def activate(metrics: Any) -> None:
    """Send reports to `metrics` (an `observability.metrics.RequestMetrics`)."""
    global _active
    _active = metrics


def count_problem(code: str) -> None:
    """Count one problem+json response with error `code` (no-op when metrics are off)."""
    metrics = _active
    if metrics is not None:
        metrics.count(metrics.problems, code)


def count_auth_failure(reason: str) -> None:
    """Count one failed authentication, e.g. "expired", "bad_signature" (no-op when off)."""
    metrics = _active
    if metrics is not None:
        metrics.count(metrics.auth_failures, reason)


def count_rate_limited(policy: str) -> None:
    """Count one request rejected by the rate-limit `policy` (no-op when off)."""
    metrics = _active
    if metrics is not None:
        metrics.count(metrics.rate_limited, policy)
