"""Security headers on every HTTP response, error responses included.

Defaults follow the OWASP Secure Headers Project for JSON APIs. Interactive docs pages get their
own Content-Security-Policy (exact paths only). HSTS is sent only over https (RFC 6797 §7.2),
where "https" comes from the socket or, from a trusted proxy only, the forwarded proto.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, TypeAlias

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis._chassis import Chassis
from fastapi_chassis._docs import DocsPages
from fastapi_chassis._proxy import TrustedProxies
from fastapi_chassis._scope import app_path
from fastapi_chassis.errors import ConfigurationError

__all__ = [
    "API_CSP",
    "DEFAULT_HEADERS",
    "SecurityHeadersMiddleware",
    "hsts_value",
    "install_security_headers",
]

Header: TypeAlias = tuple[bytes, bytes]

#: Content-Security-Policy for API responses: nothing may load, nothing may frame it.
API_CSP = "default-src 'none'; frame-ancestors 'none'"

#: The headers sent by default, in the order they are added.
DEFAULT_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": API_CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()"
    ),
    "X-Permitted-Cross-Domain-Policies": "none",
    "Cache-Control": "no-store",
}

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]*")
# Deprecated or harmful (OWASP): never emitted, refused in configuration.
_REFUSED = {
    "expect-ct": "Expect-CT is obsolete (Certificate Transparency is enforced by browsers)",
    "public-key-pins": "Public-Key-Pins (HPKP) is obsolete and can lock users out",
    "feature-policy": "Feature-Policy was replaced by Permissions-Policy",
}


def hsts_value(max_age: int, *, include_subdomains: bool = True, preload: bool = False) -> str:
    """A `Strict-Transport-Security` value; preload needs includeSubDomains and max-age >= 1y."""
    if max_age < 0:
        raise ConfigurationError(
            f"HSTS max-age is {max_age}; use seconds >= 0 (CHASSIS_SECURITY_HEADERS__HSTS_MAX_AGE)"
        )
    if preload and (not include_subdomains or max_age < 31536000):
        raise ConfigurationError(
            "HSTS preload needs includeSubDomains and max-age >= 31536000 (one year); set "
            "CHASSIS_SECURITY_HEADERS__HSTS_INCLUDE_SUBDOMAINS=true and "
            "CHASSIS_SECURITY_HEADERS__HSTS_MAX_AGE>=31536000, or turn preload off"
        )
    value = f"max-age={max_age}"
    if include_subdomains:
        value += "; includeSubDomains"
    if preload:
        value += "; preload"
    return value


def _encode(name: str, value: str) -> Header:
    if not _TOKEN.fullmatch(name):
        raise ConfigurationError(f"security header name {name!r} is not a valid HTTP token")
    if not _FIELD_VALUE.fullmatch(value):
        raise ConfigurationError(
            f"security header {name} has a control or non-ASCII character in {value!r}; "
            "header values must be printable ASCII (no CR/LF)"
        )
    lowered = name.lower()
    if lowered in _REFUSED:
        raise ConfigurationError(f"refusing to send {name}: {_REFUSED[lowered]}; remove it")
    if lowered == "x-xss-protection" and value.strip() != "0":
        raise ConfigurationError(
            "X-XSS-Protection other than 0 re-enables a filter that caused XSS leaks; "
            "send `0` or nothing"
        )
    return lowered.encode("latin-1"), value.encode("latin-1")


def _pairs(headers: Mapping[str, str | None]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple(_encode(name, value) for name, value in headers.items() if value)


class SecurityHeadersMiddleware:
    """Add security headers to every HTTP response that lacks them.

    Args:
        headers: overrides of `DEFAULT_HEADERS` (case-insensitive names); a value of `None` or
            `""` removes that header, a new name adds one.
        hsts: `Strict-Transport-Security` value (see `hsts_value`); `None` never sends it.
        force_hsts: send HSTS on plain-http requests too (TLS terminated somewhere untrusted).
        trusted_proxies: IPs/CIDRs whose `X-Forwarded-Proto`/`Forwarded` proto is believed.
        page_csp: exact path -> Content-Security-Policy for HTML pages (the docs) that need
            another policy than the API's.

    A header the response already carries (set by the handler) is never replaced.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        headers: Mapping[str, str | None] | None = None,
        hsts: str | None = "max-age=63072000; includeSubDomains",
        force_hsts: bool = False,
        trusted_proxies: Iterable[str] | TrustedProxies = (),
        page_csp: Mapping[str, str] | None = None,
    ) -> None:
        merged: dict[str, str | None] = {}
        overrides = {name.lower(): (name, value) for name, value in (headers or {}).items()}
        for name, default in DEFAULT_HEADERS.items():
            if name.lower() in overrides:
                merged[name] = overrides.pop(name.lower())[1]
            else:
                merged[name] = default
        for name, override in overrides.values():
            merged[name] = override
        self.app = app
        self._headers = _pairs(merged)
        without_csp = {k: v for k, v in merged.items() if k.lower() != "content-security-policy"}
        self._pages = {
            path: _pairs({**without_csp, "Content-Security-Policy": csp})
            for path, csp in (page_csp or {}).items()
        }
        self._hsts = _encode("Strict-Transport-Security", hsts) if hsts else None
        # Every name this middleware may add, on any path: none present means add them all.
        self._names = frozenset(
            [name for name, _ in self._headers]
            + [name for pairs in self._pages.values() for name, _ in pairs]
            + [b"strict-transport-security"]
        )
        self._force_hsts = force_hsts
        self._proxies = (
            trusted_proxies
            if isinstance(trusted_proxies, TrustedProxies)
            else TrustedProxies(trusted_proxies)
        )
        self._forwarded = bool(self._proxies)  # whether any forwarded proto can be believed

    def _for_request(
        self, scope: Scope, path: str = ""
    ) -> tuple[tuple[tuple[bytes, bytes], ...], Header | None]:
        """The headers this request's response gets, and its HSTS header (None: not sent).

        `path`: the request's `app_path()` when the caller has it already, else "".
        """
        extra = self._headers
        if self._pages:  # configured by path below the root path, as routes are
            extra = self._pages.get(path or app_path(scope), extra)
        hsts = self._hsts
        if hsts is not None and not self._force_hsts:
            proxies = self._proxies
            scheme = proxies.scheme(scope) if self._forwarded else scope.get("scheme", "http")
            if scheme != "https":
                hsts = None
        return extra, hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra, hsts = self._for_request(scope)
        names = self._names

        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = add_missing(
                    list(message.get("headers", ())), extra, hsts, names
                )
            return send(message)

        await self.app(scope, receive, send_with_headers)


def add_missing(
    headers: list[Header],
    extra: Iterable[Header],
    hsts: Header | None,
    names: frozenset[bytes],
    present: set[bytes] | None = None,
) -> list[Header]:
    """`headers` plus each of `extra` (and `hsts`) whose name is not in it yet.

    `present` is the set of lower-cased names in `headers`, when the caller has it already.
    """
    if present is None:
        present = {name.lower() for name, _ in headers}
    if present.isdisjoint(names):
        # The usual case: the handler set none of them, so add them all at once.
        headers.extend(extra)
        if hsts is not None:
            headers.append(hsts)
        return headers
    for pair in extra:
        if pair[0] not in present:
            headers.append(pair)
    if hsts is not None and b"strict-transport-security" not in present:
        headers.append(hsts)
    return headers


def install_security_headers(chassis: Chassis, docs: DocsPages) -> None:
    """Add `SecurityHeadersMiddleware` from `settings.security_headers` (nothing when disabled)."""
    config = chassis.settings.security_headers
    if not config.enabled:
        return
    settings = chassis.settings
    headers: dict[str, str | None] = {
        "X-Content-Type-Options": config.content_type_options,
        "X-Frame-Options": config.frame_options,
        "Referrer-Policy": config.referrer_policy,
        "Content-Security-Policy": config.content_security_policy,
        "Cross-Origin-Opener-Policy": config.cross_origin_opener_policy,
        "Cross-Origin-Resource-Policy": config.cross_origin_resource_policy,
        "Permissions-Policy": config.permissions_policy,
        "X-Permitted-Cross-Domain-Policies": config.permitted_cross_domain_policies,
        "Cache-Control": config.cache_control,
    }
    headers.update(config.extra_headers)
    hsts = None
    if config.hsts:
        hsts = hsts_value(
            config.hsts_max_age,
            include_subdomains=config.hsts_include_subdomains,
            preload=config.hsts_preload,
        )
    options: dict[str, Any] = {
        "headers": headers,
        "hsts": hsts,
        "force_hsts": config.force_hsts,
        "trusted_proxies": TrustedProxies.from_settings(settings),
        "page_csp": docs.policies(config.docs_content_security_policy),
    }
    SecurityHeadersMiddleware(_unused, **options)  # fail at install time, not at first request
    chassis.add_middleware(SecurityHeadersMiddleware, **options)


async def _unused(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("validation-only instance")  # pragma: no cover
