"""Render the settings reference (every field, its variable, default and production rule).

Used by the docs build (`docs/_hooks.py`) so the reference is generated from the models and
cannot drift from them.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from fastapi_chassis.settings import ChassisSettings

# Production rules by field path, as `_prod_checks` enforces them.
PRODUCTION_RULES: dict[str, str] = {
    "debug": "must be false",
    "auth.jwt_secret": ">= 32 random bytes, not a well-known value (HMAC algorithms)",
    "auth.private_key": "required (or `private_key_file`) for RS256/ES256/EdDSA",
    "auth.verification_keys": "HMAC secrets: as `jwt_secret`",
    "auth.argon2_memory_cost": "x `argon2_time_cost` >= OWASP minimum (19456 KiB x 2)",
    "pagination.cursor_secret": ">= 32 random bytes when set",
    "cors.allow_origins": "no `*` while `allow_credentials` is true",
    "cors.allow_credentials": "not with `*` origins",
    "docs.enabled": "unset means off in prod",
}


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        return ""
    return f"`{json.dumps(value)}`"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_settings_reference(settings_cls: type[ChassisSettings] = ChassisSettings) -> str:
    """A Markdown table per settings group, generated from the models."""
    prefix = str(settings_cls.model_config.get("env_prefix") or "")
    delimiter = str(settings_cls.model_config.get("env_nested_delimiter") or "__")
    lines: list[str] = []

    def table(title: str, doc: str, fields: dict[str, FieldInfo], path: tuple[str, ...]) -> None:
        lines.extend([f"## {title}", "", doc, ""])
        lines.append("| Field | Environment variable | Default | Production rule | Description |")
        lines.append("|---|---|---|---|---|")
        for name, field in fields.items():
            full = (*path, name)
            env = (prefix + delimiter.join(full)).upper()
            rule = PRODUCTION_RULES.get(".".join(full), "")
            lines.append(
                f"| `{'.'.join(full)}` | `{env}` | {_escape(_default(field))} | {rule} "
                f"| {_escape(field.description or '')} |"
            )
        lines.append("")

    top = {
        name: field
        for name, field in settings_cls.model_fields.items()
        if name not in settings_cls.groups
    }
    table("Service", "Top-level fields.", top, ())
    for group in settings_cls.groups:
        annotation = settings_cls.model_fields[group].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise TypeError(f"settings group {group!r} is not a pydantic model")
        doc = (annotation.__doc__ or "").strip().splitlines()[0]
        table(f"`{group}` — {annotation.__name__}", doc, annotation.model_fields, (group,))
    return "\n".join(lines)
