"""The chassis app of the benchmark: `build_app()` with chosen blocks switched on.

Blocks land on their own branches, so every chassis setting is feature-detected: a component
whose settings fields do not exist is reported as unavailable instead of failing the build,
and `fingerprint()` lets the runner tell a block that is wired from a setting that changes
nothing. `GET /me` depends on `CurrentPrincipal` directly and answers with its subject, as a
chassis user would write it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from fastapi import FastAPI

from benchmarks.apps import (
    BODY_LIMIT,
    JWT_SECRET,
    JWT_SUBJECT,
    Built,
    add_filler_routes,
    add_routes,
    make_token,
    pyjwt_subject,
)


@dataclass(frozen=True)
class Component:
    """One switchable chassis block and the settings that turn it on and off."""

    name: str
    label: str
    #: (group, field, value when on, value when off); all must exist for the block to count.
    switches: tuple[tuple[str, str, Any, Any], ...]
    #: Extra (group, field, value) applied when on, only where the field exists.
    extras: tuple[tuple[str, str, Any], ...] = ()
    #: For a block with no switch: substrings of its middleware class name, to recognise it
    #: in the chassis base (where it is then always on).
    base_markers: tuple[str, ...] = ()


COMPONENTS: tuple[Component, ...] = (
    Component("request_id", "request id", (("request_id", "enabled", True, False),)),
    Component(
        "security_headers", "security headers", (("security_headers", "enabled", True, False),)
    ),
    Component(
        "body_limit",
        "body limit",
        (("body_limit", "enabled", True, False),),
        (("body_limit", "max_bytes", BODY_LIMIT),),
    ),
    Component(
        "error_boundary",
        "error boundary",
        (("errors", "boundary", True, False),),
        base_markers=("ErrorBoundary", "error_boundary"),
    ),
    Component(
        "access_log",
        "access log",
        (("logging", "access_log", True, False),),
        (("logging", "json_output", True),),
    ),
    Component("metrics", "metrics", (("metrics", "enabled", True, False),)),
    Component(
        "rate_limit",
        "rate limit (memory)",
        (("rate_limit", "enabled", True, False),),
        (("rate_limit", "default", "999999999/second"),),
    ),
    Component(
        "tracing",
        "tracing (no exporter)",
        (("tracing", "enabled", True, False),),
        (("tracing", "exporter", "none"), ("tracing", "sample_ratio", 1.0)),
    ),
)
COMPONENTS_BY_NAME = {c.name: c for c in COMPONENTS}
CORE = ("request_id", "security_headers", "body_limit", "error_boundary")
FULL_DEFAULT = (*CORE, "access_log", "metrics")


def _group_fields(group: str) -> set[str] | None:
    from fastapi_chassis import ChassisSettings

    info = ChassisSettings.model_fields.get(group)
    if info is None:
        return None
    annotation = info.annotation
    fields = getattr(annotation, "model_fields", None)
    return set(fields) if fields is not None else None


def component_missing(name: str) -> str | None:
    """Why the component cannot be switched on this build, or None when its settings exist."""
    component = COMPONENTS_BY_NAME[name]
    for group, field_name, _, _ in component.switches:
        fields = _group_fields(group)
        if fields is None or field_name not in fields:
            return f"no setting {group}.{field_name}"
    return None


def chassis_settings_data(enabled: Iterable[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Settings data with exactly `enabled` components on (where they exist), and notes."""
    on = set(enabled)
    data: dict[str, dict[str, Any]] = {}
    notes: list[str] = []

    def put(group: str, name: str, value: Any) -> None:
        fields = _group_fields(group)
        if fields is not None and name in fields:
            data.setdefault(group, {})[name] = value

    for component in COMPONENTS:
        missing = component_missing(component.name)
        if missing is not None:
            if component.name in on:
                notes.append(f"{component.label}: cannot be switched here ({missing})")
            continue
        wanted = component.name in on
        for group, name, on_value, off_value in component.switches:
            put(group, name, on_value if wanted else off_value)
        if wanted:
            for group, name, value in component.extras:
                put(group, name, value)
    put("auth", "algorithm", "HS256")
    put("auth", "jwt_secret", JWT_SECRET)
    return data, notes


def _subject_of(principal: Any) -> str:
    for attr in ("subject", "sub"):
        value = getattr(principal, attr, None)
        if value is not None:
            return str(value)
    if isinstance(principal, dict):
        return str(principal["sub"])
    return str(principal)


def _chassis_subject_dependency() -> Callable[..., Any] | None:
    """The chassis' own authenticated-principal dependency, when the auth block exists."""
    import fastapi_chassis

    for name in ("CurrentPrincipal", "CurrentUser"):
        alias = getattr(fastapi_chassis, name, None)
        if alias is None:
            continue
        metadata = getattr(alias, "__metadata__", ())
        dependency = next((m.dependency for m in metadata if hasattr(m, "dependency")), None)
        if dependency is not None:
            return cast(Callable[..., Any], dependency)
    return None


def build_chassis(enabled: Iterable[str], fillers: int, auth: str) -> Built:
    from fastapi_chassis import ChassisSettings, build_app

    data, notes = chassis_settings_data(enabled)
    if auth == "uncached":
        # Every request's token is verified in full, as if each came with a new token.
        fields = _group_fields("auth")
        if fields is not None and "verified_token_cache" in fields:
            data.setdefault("auth", {})["verified_token_cache"] = 0
        auth = "auto"
    settings = ChassisSettings(_env_file=None, environment="staging", **data)
    app = build_app(settings)
    dependency = _chassis_subject_dependency() if auth == "auto" else None
    mint = make_token
    subject_of: Callable[[Any], str] = str
    if dependency is None:
        dependency = pyjwt_subject
        notes.append("/me: plain pyjwt dependency (no chassis auth used)")
    else:
        subject_of = _subject_of
        notes.append("/me: chassis auth")
        mint = _chassis_minter(app)
    add_filler_routes(app, fillers)
    add_routes(app, dependency, subject_of)
    return Built(app, notes, mint)


def _chassis_minter(app: FastAPI) -> Callable[[], str]:
    """Tokens signed by the app's own token service when the chassis offers a way to mint them."""
    try:
        from fastapi_chassis.testing import mint_token
    except ImportError:
        return make_token

    def mint() -> str:
        return str(mint_token(app, JWT_SUBJECT, ["items:read"]))

    return mint


def fingerprint(app: FastAPI) -> dict[str, Any]:
    """What the chassis wired: compared against the base to tell a wired block from a no-op."""
    middleware = []
    for m in app.user_middleware:
        cls = getattr(m, "cls", m)
        middleware.append(getattr(cls, "__qualname__", None) or repr(cls))
    chassis = getattr(app.state, "chassis", None)
    return {
        "middleware": middleware,
        "routes": [getattr(r, "path", repr(r)) for r in app.router.routes],
        "handlers": sorted(repr(k) for k in app.exception_handlers),
        "resources": len(getattr(chassis, "resources", ())),
        "extensions": sorted(getattr(chassis, "extensions", {})),
        "stack_override": "build_middleware_stack" in vars(app),
    }
