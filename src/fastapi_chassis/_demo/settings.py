"""The demo's settings: the environment first, demo defaults only where it is silent."""

from __future__ import annotations

import importlib.util
from typing import Any

from fastapi_chassis.settings import ChassisSettings

__all__ = ["demo_settings"]


def _prometheus_installed() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("prometheus_client", "prometheus_fastapi_instrumentator")
    )


def demo_settings() -> ChassisSettings:
    """`ChassisSettings()` from the environment, with the demo's defaults for unset values.

    The demo turns on refresh tokens, metrics (when the `prometheus` extra is installed) and
    a console span exporter for `CHASSIS_TRACING__ENABLED=true`; any `CHASSIS_*` variable that
    sets one of these wins over the demo's choice.
    """
    from_env = ChassisSettings()
    defaults: dict[str, Any] = {
        "service_name": "chassis-demo",
        "auth": {"refresh_tokens": True},
        "tracing": {"exporter": "console"},
    }
    if _prometheus_installed():
        defaults["metrics"] = {"enabled": True}
    overrides: dict[str, Any] = {}
    for name, value in defaults.items():
        if not isinstance(value, dict):
            if name not in from_env.model_fields_set:
                overrides[name] = value
            continue
        given = getattr(from_env, name).model_fields_set
        unset = {field: v for field, v in value.items() if field not in given}
        if unset:
            overrides[name] = unset
    # Keyword values are deep-merged over the environment's, so the rest of a group still comes
    # from CHASSIS_* variables (e.g. CHASSIS_AUTH__JWT_SECRET beside the demo's refresh tokens).
    return ChassisSettings(**overrides) if overrides else from_env
