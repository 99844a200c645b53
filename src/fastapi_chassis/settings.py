"""Settings: `ChassisSettings` and one nested model per building block.

Every group is a plain pydantic model, importable and usable on its own. `ChassisSettings`
reads them from the environment (`CHASSIS_` prefix, `__` between levels, `.env` support) and,
in production, refuses unsafe values with one error that lists every problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fastapi_chassis._prod_checks import collect_production_problems

__all__ = [
    "AuthSettings",
    "BodyLimitSettings",
    "ChassisSettings",
    "CorsSettings",
    "DocsSettings",
    "Environment",
    "ErrorsSettings",
    "HealthSettings",
    "LoggingSettings",
    "MetricsSettings",
    "PaginationSettings",
    "ProxySettings",
    "RateLimitSettings",
    "RedisSettings",
    "RequestIDSettings",
    "SecurityHeadersSettings",
    "TracingSettings",
    "TrustedHostsSettings",
]

Environment = Literal["dev", "test", "staging", "prod"]

MiB = 1024 * 1024


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DocsSettings(_Group):
    """Interactive API documentation and the OpenAPI document."""

    enabled: bool | None = Field(
        default=None,
        description="Serve /docs, /redoc and /openapi.json. Unset: on, except in prod.",
    )
    openapi_url: str = Field(default="/openapi.json", description="Path of the OpenAPI document.")
    docs_url: str = Field(default="/docs", description="Path of Swagger UI.")
    redoc_url: str = Field(default="/redoc", description="Path of ReDoc.")


class RequestIDSettings(_Group):
    """Request id: accept a safe incoming id or mint one, echo it on every response."""

    enabled: bool = Field(default=True, description="Add the request-id middleware.")
    header: str = Field(default="X-Request-ID", description="Header read and written.")
    trust_incoming: bool = Field(
        default=True,
        description="Accept a well-formed id sent by the client (or the proxy in front).",
    )
    max_length: int = Field(
        default=128, ge=1, le=1024, description="Longest incoming id accepted, in characters."
    )


class SecurityHeadersSettings(_Group):
    """Response security headers (OWASP Secure Headers Project defaults for JSON APIs).

    Every header is configurable; an empty string removes it. A header the handler set itself
    always wins over these defaults.
    """

    enabled: bool = Field(default=True, description="Add the security-headers middleware.")
    content_security_policy: str = Field(
        default="default-src 'none'; frame-ancestors 'none'",
        description="Content-Security-Policy of API responses.",
    )
    docs_content_security_policy: str | None = Field(
        default=None,
        description="Content-Security-Policy of the docs pages only. Unset: 'self'-only with "
        "the `docs` extra installed, else also allowing the CDN the assets come from.",
    )
    content_type_options: str = Field(default="nosniff", description="X-Content-Type-Options.")
    frame_options: str = Field(default="DENY", description="X-Frame-Options.")
    referrer_policy: str = Field(default="no-referrer", description="Referrer-Policy.")
    cross_origin_opener_policy: str = Field(
        default="same-origin", description="Cross-Origin-Opener-Policy."
    )
    cross_origin_resource_policy: str = Field(
        default="same-origin",
        description="Cross-Origin-Resource-Policy (`same-site`/`cross-origin` for shared APIs).",
    )
    permissions_policy: str = Field(
        default="accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()",
        description="Permissions-Policy.",
    )
    permitted_cross_domain_policies: str = Field(
        default="none", description="X-Permitted-Cross-Domain-Policies."
    )
    cache_control: str = Field(
        default="no-store", description="Cache-Control when the handler sets none."
    )
    extra_headers: dict[str, str] = Field(
        default_factory=dict, description="More headers to add, name -> value."
    )
    hsts: bool = Field(default=True, description="Send Strict-Transport-Security over https.")
    hsts_max_age: int = Field(
        default=63072000, ge=0, description="Strict-Transport-Security max-age, seconds."
    )
    hsts_include_subdomains: bool = Field(default=True, description="HSTS includeSubDomains.")
    hsts_preload: bool = Field(default=False, description="HSTS preload (explicit opt-in only).")
    force_hsts: bool = Field(
        default=False, description="Send HSTS even when the request did not arrive over https."
    )


class BodyLimitSettings(_Group):
    """Request body size limit and multipart form limits."""

    enabled: bool = Field(default=True, description="Enforce a request body limit.")
    max_bytes: int | None = Field(
        default=MiB,
        ge=0,
        description="Largest request body accepted, in bytes (default 1 MiB); None (in code): "
        "no global limit. Routes override it with `body_limit()` or FastAPI's `max_body_size=`.",
    )
    max_form_fields: int | None = Field(
        default=None,
        ge=0,
        description="Most non-file fields in an automatically parsed form (FastAPI releases "
        "with `form_limits`); unset: FastAPI's default (1000).",
    )
    max_form_files: int | None = Field(
        default=None,
        ge=0,
        description="Most files in an automatically parsed multipart form; unset: 1000.",
    )
    max_form_part_size: int | None = Field(
        default=None,
        ge=0,
        description="Largest non-file form field, in bytes; unset: 1 MiB.",
    )


class CorsSettings(_Group):
    """CORS, applied with Starlette's `CORSMiddleware` when `allow_origins` is not empty."""

    allow_origins: list[str] = Field(
        default_factory=list, description="Allowed origins; empty disables CORS."
    )
    allow_origin_regex: str | None = Field(default=None, description="Regex of allowed origins.")
    allow_methods: list[str] = Field(
        default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        description="Allowed methods.",
    )
    allow_headers: list[str] = Field(
        default_factory=lambda: ["Authorization", "Content-Type", "X-Request-ID"],
        description="Allowed request headers.",
    )
    allow_credentials: bool = Field(default=False, description="Allow cookies/credentials.")
    expose_headers: list[str] = Field(
        default_factory=list,
        description="Extra response headers exposed to browsers (the request-id header is added).",
    )
    max_age: int = Field(default=600, ge=0, description="Preflight cache lifetime, seconds.")


class TrustedHostsSettings(_Group):
    """Host header allow-list, applied with Starlette's `TrustedHostMiddleware`."""

    allowed_hosts: list[str] = Field(
        default_factory=list, description="Allowed Host values (`*.example.com` works); empty: off."
    )


class ProxySettings(_Group):
    """Reverse proxies in front of the service, whose forwarding headers are believed."""

    trusted: list[str] = Field(
        default_factory=list,
        description="IPs or CIDRs of trusted proxies; X-Forwarded-For/-Proto and Forwarded "
        "are honoured only from these peers. Empty: the socket peer is the client.",
    )
    header: Literal["x-forwarded", "forwarded"] = Field(
        default="x-forwarded",
        description="The header family the proxies write: `x-forwarded` (X-Forwarded-For/-Proto, "
        "nginx, most load balancers) or `forwarded` (RFC 7239). Only that one is read.",
    )


class ErrorsSettings(_Group):
    """The problem+json error envelope."""

    type_base_url: str | None = Field(
        default=None,
        description="Base URI for problem `type` (e.g. https://errors.example.com/); "
        "unset: `about:blank`.",
    )
    redact_fields: list[str] = Field(
        default_factory=lambda: ["password", "secret", "token", "authorization"],
        description="Validation errors on a location containing one of these names "
        "(case-insensitive substring, e.g. `token` matches `x-api-token`) get a generic `msg`.",
    )

    @model_validator(mode="after")
    def _absolute_type_base(self) -> ErrorsSettings:
        base = self.type_base_url
        if base:
            scheme, colon, _ = base.partition(":")
            if not (
                colon
                and scheme.isascii()
                and scheme[:1].isalpha()
                and all(c.isalnum() or c in "+.-" for c in scheme)
            ):
                raise ValueError(
                    f"errors.type_base_url {base!r} is not an absolute URI; problem types need "
                    "a scheme, e.g. https://errors.example.com/ (or leave it unset: about:blank)"
                )
        return self


class AuthSettings(_Group):
    """JWT access and refresh tokens, and argon2id password hashing."""

    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"] = Field(
        default="HS256",
        description="JWT signing algorithm; every key (signing and verification) uses its family.",
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HMAC secret for HS* (>= the hash size: 32/48/64 bytes). "
        "Unset in dev/test: a random per-process secret.",
    )
    private_key: SecretStr | None = Field(
        default=None,
        description="PEM private key for RS256/ES256/EdDSA. "
        "Unset (and no file) in dev/test: an ephemeral per-process key.",
    )
    private_key_file: Path | None = Field(
        default=None, description="File holding the PEM private key (instead of `private_key`)."
    )
    kid: str | None = Field(
        default=None,
        description="Key id of the signing key, sent in the token header. "
        "Unset: derived from the key (RFC 7638 thumbprint for public keys).",
    )
    verification_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Further keys that verify (never sign), by kid, for rotation: HMAC secrets, "
        'or PEM public keys (or paths to PEM files). JSON: {"2025-01": "-----BEGIN ..."}.',
    )
    jwks_path: str = Field(
        default="/.well-known/jwks.json",
        description="Where the public keys are published (RS256/ES256/EdDSA); empty: not served.",
    )
    issuer: str | None = Field(default=None, description="`iss` issued and required.")
    audience: str | None = Field(default=None, description="`aud` issued and required.")
    access_token_ttl: int = Field(default=900, ge=1, description="Access token lifetime, seconds.")
    leeway: int = Field(default=30, ge=0, le=60, description="Clock leeway, seconds (max 60).")
    refresh_tokens: bool = Field(
        default=False, description="Issue refresh tokens (rotated on use, reuse revokes them)."
    )
    refresh_token_ttl: int = Field(
        default=14 * 24 * 3600, ge=1, description="Refresh token lifetime, seconds."
    )
    check_revocation: bool = Field(
        default=True,
        description="Look up revoked tokens in the shared store on every verification.",
    )
    max_token_bytes: int = Field(
        default=8192,
        ge=256,
        le=65536,
        description="Longest token accepted, checked before parsing.",
    )
    verified_token_cache: int = Field(
        default=1024,
        ge=0,
        le=1_000_000,
        description=(
            "Verified access tokens remembered per process (0: off). A repeat of one skips the "
            "signature check; expiry, its key and revocation are still checked every time."
        ),
    )
    argon2_time_cost: int = Field(default=3, ge=1, description="argon2id passes (RFC 9106: 3).")
    argon2_memory_cost: int = Field(
        default=65536,
        ge=8,
        description="argon2id memory per hash, KiB (RFC 9106 low-memory profile: 65536 = 64 MiB).",
    )
    argon2_parallelism: int = Field(default=4, ge=1, description="argon2id lanes (RFC 9106: 4).")
    max_password_bytes: int = Field(
        default=1024, ge=64, description="Longest password accepted (UTF-8 bytes); longer: 422."
    )
    max_concurrent_hashes: int = Field(
        default=4,
        ge=1,
        description="Password hashes running at once per process; each uses `argon2_memory_cost`.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> AuthSettings:
        if self.argon2_memory_cost < 8 * self.argon2_parallelism:
            raise ValueError(
                f"auth.argon2_memory_cost ({self.argon2_memory_cost} KiB) must be at least "
                f"8 x auth.argon2_parallelism ({8 * self.argon2_parallelism} KiB)"
            )
        if self.private_key is not None and self.private_key_file is not None:
            raise ValueError("set auth.private_key or auth.private_key_file, not both")
        return self


class RateLimitSettings(_Group):
    """Rate limiting."""

    enabled: bool = Field(default=False, description="Add the global rate-limit middleware.")
    default: str = Field(
        default="100/minute", description='Global limit, e.g. "10/second;500/hour".'
    )
    fail_open: bool = Field(
        default=True, description="Allow requests when the shared store is down (else 503)."
    )
    exempt_paths: list[str] | None = Field(
        default=None,
        description="Paths (and everything below them) the global limit skips; "
        "unset: the health and metrics paths.",
    )
    exempt_keys: list[str] = Field(
        default_factory=list,
        description='Clients never limited: IPs or CIDRs (e.g. "10.0.0.7", "10.1.0.0/16"), or '
        'keys your own key functions derive from a verified identity (e.g. "sub:monitoring").',
    )
    legacy_headers: bool = Field(
        default=False, description="Also send X-RateLimit-Limit/-Remaining/-Reset."
    )
    ipv6_prefix: int = Field(
        default=64,
        ge=32,
        le=128,
        description="IPv6 clients share one budget per network of this prefix length "
        "(a subscriber usually holds a whole /64); IPv4 clients are counted per address.",
    )
    memory_max_keys: int = Field(
        default=100_000,
        ge=1,
        description="Most client logs the in-memory limiter keeps (about 1 KB each); beyond "
        "it the least recently admitted clients are forgotten. Redis: its maxmemory policy.",
    )
    warn_interval: float = Field(
        default=60.0, gt=0, description="Least seconds between two store-failure warnings."
    )


class RedisSettings(_Group):
    """Redis for shared state; unset `url` keeps state in memory (one process)."""

    url: SecretStr | None = Field(
        default=None, description="redis://[:password@]host:port/db; unset: in-memory state."
    )
    socket_timeout: float = Field(default=0.25, gt=0, description="Per-command timeout, seconds.")
    connect_timeout: float = Field(default=0.5, gt=0, description="Connect timeout, seconds.")
    max_connections: int = Field(
        default=50,
        ge=1,
        description="Connections per process; callers beyond it wait for a free one "
        "(within the timeouts).",
    )


class LoggingSettings(_Group):
    """Structured logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Root log level."
    )
    json_output: bool | None = Field(
        default=None, description="JSON lines; unset: JSON except in dev."
    )
    redact_keys: list[str] = Field(
        default_factory=lambda: [
            "authorization",
            "cookie",
            "set-cookie",
            "password",
            "token",
            "secret",
            "api_key",
            "x-api-key",
        ],
        description="Keys masked wherever they appear in a log event, at any depth: a key is "
        "masked when it contains one of these (case-insensitive, `-` and `_` alike).",
    )
    configure: bool = Field(
        default=True,
        description="Let install() configure process-wide logging (structlog, the root logger, "
        "uvicorn's loggers). Off: keep your own logging setup.",
    )
    access_log: bool = Field(
        default=True, description="Add the access-log middleware (one line per request)."
    )
    access_log_skip_paths: list[str] | None = Field(
        default=None,
        description="Paths the access log leaves out; unset: the health and metrics paths.",
    )


class MetricsSettings(_Group):
    """Prometheus metrics (extra `prometheus`)."""

    enabled: bool = Field(default=False, description="Expose Prometheus metrics.")
    path: str = Field(default="/metrics", description="Metrics endpoint path.")
    bearer_token: SecretStr | None = Field(
        default=None,
        description="When set, scrapes must send `Authorization: Bearer <token>`; others get 401.",
    )
    separate_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve metrics on this port (own HTTP server thread) instead of a route "
        "of the app. Not for multi-worker servers: each worker would bind the port.",
    )
    separate_host: str = Field(
        default="0.0.0.0",  # noqa: S104
        description="Interface the separate metrics server listens on.",
    )
    buckets: list[float] = Field(
        default_factory=lambda: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        min_length=1,
        description="Upper bounds of the request-duration histogram buckets, seconds.",
    )
    exclude_paths: list[str] = Field(
        default_factory=list,
        description="Extra request paths not measured (the health and metrics paths never are).",
    )


class TracingSettings(_Group):
    """OpenTelemetry tracing (extra `otel`)."""

    enabled: bool = Field(default=False, description="Trace requests with OpenTelemetry.")
    exporter: Literal["none", "console", "otlp"] = Field(
        default="none", description="Where spans go."
    )
    endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces; unset: "
        "the exporter's default (OTEL_EXPORTER_OTLP_* variables apply).",
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Headers sent with every OTLP export (e.g. an API key), as a JSON object.",
    )
    sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Parent-based ratio sampler."
    )
    set_global_provider: bool = Field(
        default=True,
        description="Also make the chassis' TracerProvider the process-wide one, so "
        "`trace.get_tracer()` in your code joins request traces (only if none is set yet).",
    )
    instrumentation: Literal["auto", "native", "middleware"] = Field(
        default="auto",
        description="How requests are traced: FastAPI's native telemetry (releases that have "
        "it), opentelemetry-instrumentation's ASGI middleware, or auto (native when available).",
    )
    operation_spans: bool = Field(
        default=False,
        description="FastAPI releases with native telemetry only: child spans for dependency "
        "resolution, the endpoint and serialization (costs time per request).",
    )
    exclude_paths: list[str] = Field(
        default_factory=list,
        description="Extra request paths never traced (the health and metrics paths never are).",
    )


class HealthSettings(_Group):
    """Liveness and readiness endpoints."""

    enabled: bool = Field(default=True, description="Serve the health endpoints.")
    liveness_path: str = Field(default="/healthz", description="Liveness path.")
    readiness_path: str = Field(default="/readyz", description="Readiness path.")
    check_timeout: float = Field(default=2.0, gt=0, description="Per-check timeout, seconds.")
    include_in_schema: bool = Field(
        default=False, description="List the health endpoints in the OpenAPI document."
    )
    drain_seconds: float | None = Field(
        default=None,
        ge=0,
        description="On SIGTERM and at shutdown, readiness answers 503 for this long before the "
        "server stops accepting. Unset: 0 in dev/test, 5 in staging/prod (Kubernetes: 5-10).",
    )
    shutdown_timeout: float = Field(
        default=30.0,
        ge=0,
        description="Longest wait at shutdown for in-flight requests to finish, seconds.",
    )


class PaginationSettings(_Group):
    """Offset and cursor pagination."""

    default_size: int = Field(default=20, ge=1, description="Page size when none is asked for.")
    max_size: int = Field(default=100, ge=1, description="Largest page size a client may ask for.")
    cursor_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs cursors (HKDF-derived). Unset: derived from auth.jwt_secret "
        "when that is set, else a random per-process key (one worker only).",
    )
    max_offset: int = Field(
        default=10_000,
        ge=0,
        description="Deepest row offset pagination reaches ((page - 1) * size); deeper pages "
        "get 422. Use cursor pagination for deep listings.",
    )
    cursor_max_length: int = Field(
        default=1024,
        ge=128,
        le=8192,
        description="Longest cursor accepted, in characters; longer ones get 400 unread.",
    )
    link_header: bool = Field(
        default=False,
        description="Send RFC 8288 Link headers (first/prev/next/last) on every paginated "
        "route; routes can also opt in one by one.",
    )

    @model_validator(mode="after")
    def _default_within_max(self) -> PaginationSettings:
        if self.default_size > self.max_size:
            raise ValueError(
                f"pagination.default_size ({self.default_size}) exceeds "
                f"pagination.max_size ({self.max_size}); raise max_size or lower default_size"
            )
        return self


class ChassisSettings(BaseSettings):
    """Settings for a service built on the chassis.

    Subclass it to add your own fields or change the environment prefix:

        class Settings(ChassisSettings):
            model_config = SettingsConfigDict(env_prefix="NOTES_")
            database_url: str = "sqlite:///notes.db"
    """

    model_config = SettingsConfigDict(
        env_prefix="CHASSIS_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    #: Names of the nested groups, in the order the settings reference documents them.
    groups: ClassVar[tuple[str, ...]] = (
        "docs",
        "request_id",
        "security_headers",
        "body_limit",
        "cors",
        "trusted_hosts",
        "proxy",
        "errors",
        "auth",
        "rate_limit",
        "redis",
        "logging",
        "metrics",
        "tracing",
        "health",
        "pagination",
    )

    service_name: str = Field(default="fastapi-chassis-service", description="Service name.")
    version: str = Field(default="0.1.0", description="Service version.")
    environment: Environment = Field(default="dev", description="dev, test, staging or prod.")
    debug: bool = Field(default=False, description="Show exception details in 500 responses.")

    docs: DocsSettings = Field(default_factory=DocsSettings)
    request_id: RequestIDSettings = Field(default_factory=RequestIDSettings)
    security_headers: SecurityHeadersSettings = Field(default_factory=SecurityHeadersSettings)
    body_limit: BodyLimitSettings = Field(default_factory=BodyLimitSettings)
    cors: CorsSettings = Field(default_factory=CorsSettings)
    trusted_hosts: TrustedHostsSettings = Field(default_factory=TrustedHostsSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    errors: ErrorsSettings = Field(default_factory=ErrorsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    pagination: PaginationSettings = Field(default_factory=PaginationSettings)

    @property
    def is_prod(self) -> bool:
        """True in the production environment."""
        return self.environment == "prod"

    @property
    def docs_enabled(self) -> bool:
        """Whether interactive docs are served: explicit setting, else off in prod only."""
        if self.docs.enabled is not None:
            return self.docs.enabled
        return not self.is_prod

    @property
    def json_logs(self) -> bool:
        """Whether logs are JSON lines: explicit setting, else JSON outside dev."""
        if self.logging.json_output is not None:
            return self.logging.json_output
        return self.environment != "dev"

    def env_var(self, *path: str) -> str:
        """The environment variable that sets the field at `path`, e.g. `("auth", "jwt_secret")`."""
        prefix = str(self.model_config.get("env_prefix") or "")
        delimiter = str(self.model_config.get("env_nested_delimiter") or "__")
        return (prefix + delimiter.join(path)).upper()

    @model_validator(mode="after")
    def _refuse_unsafe_production_values(self) -> ChassisSettings:
        if self.is_prod:
            problems = collect_production_problems(self)
            if problems:
                lines = "\n".join(f"  - {p}" for p in problems)
                raise ValueError(
                    f"{len(problems)} unsafe setting(s) for environment=prod:\n{lines}"
                )
        return self

    def masked(self) -> dict[str, Any]:
        """The effective configuration as JSON-ready data, every secret masked.

        `SecretStr` fields print as `**********`; a password inside any URL
        (`https://user:pw@collector`) is masked too.
        """
        masked: dict[str, Any] = _mask_url_passwords(self.model_dump(mode="json"))
        return masked


def _mask_url_passwords(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _mask_url_passwords(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_url_passwords(item) for item in value]
    if isinstance(value, str) and "://" in value and "@" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = f"{parts.username or ''}:**********@{parts.hostname or ''}"
            if parts.port is not None:
                netloc += f":{parts.port}"
            return urlunsplit(parts._replace(netloc=netloc))
    return value
