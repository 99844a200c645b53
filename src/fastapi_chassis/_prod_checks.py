"""Production rules: the unsafe values `ChassisSettings` refuses when `environment="prod"`.

Each rule returns messages that name the environment variable, the rule and the fix, so one
startup error tells an operator everything to change at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi_chassis.settings import ChassisSettings

MIN_SECRET_BYTES = 32

GENERATE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"  # noqa: S105
FIX = f"(generate one with `{GENERATE_SECRET}`)"

# Secrets copied from tutorials and templates; any of them in production means a forgeable token.
WELL_KNOWN_SECRETS = frozenset(
    {
        "secret",
        "secret-key",
        "secretkey",
        "your-secret-key",
        "your_secret_key",
        "supersecret",
        "super-secret-key",
        "changeme",
        "change-me",
        "changethis",
        "jwt-secret",
        "jwt_secret",
        "mysecret",
        "default",
        "password",
        "development",
        # FastAPI's OAuth2 tutorial key, pasted into countless services.
        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
    }
)

_HMAC_PREFIX = "HS"


def _secret_problem(env: str, value: str | None, purpose: str) -> str | None:
    if value is None or value == "":
        return (
            f"{env} is not set; production needs a {purpose} of at least "
            f"{MIN_SECRET_BYTES} bytes {FIX}"
        )
    size = len(value.encode())
    if value.strip().lower() in WELL_KNOWN_SECRETS:
        return f"{env} is a well-known example value; anyone can forge with it {FIX}"
    if size < MIN_SECRET_BYTES:
        return f"{env} is {size} bytes; production needs at least {MIN_SECRET_BYTES} {FIX}"
    if len(set(value)) < 8:
        return f"{env} repeats a handful of characters; use a random value {FIX}"
    return None


# OWASP's argon2id minimum is m=19 MiB, t=2; its equivalent pairs all keep m x t >= 7 MiB x 5.
ARGON2_MIN_MEMORY_X_TIME = 7168 * 5


def _auth_problems(settings: ChassisSettings) -> list[str]:
    auth = settings.auth
    env = settings.env_var
    problems: list[str] = []
    if auth.algorithm.upper().startswith(_HMAC_PREFIX):
        for kid, value in auth.verification_keys.items():
            problem = _secret_problem(
                f"{env('auth', 'verification_keys')}[{kid!r}]",
                value.get_secret_value(),
                "JWT verification secret",
            )
            if problem:
                problems.append(problem)
    elif auth.private_key is None and auth.private_key_file is None:
        problems.append(
            f"{env('auth', 'private_key')} (or {env('auth', 'private_key_file')}) is not set; "
            f"{auth.algorithm} in production needs a stable private key, or tokens die with "
            "the process (generate one, e.g. `openssl genpkey -algorithm ed25519`)"
        )
    if auth.argon2_memory_cost * auth.argon2_time_cost < ARGON2_MIN_MEMORY_X_TIME:
        problems.append(
            f"{env('auth', 'argon2_memory_cost')} x {env('auth', 'argon2_time_cost')} is "
            f"{auth.argon2_memory_cost} KiB x {auth.argon2_time_cost}, below OWASP's argon2id "
            "minimum (19456 KiB x 2); keep the defaults (65536 KiB x 3) in production"
        )
    return problems


def collect_production_problems(settings: ChassisSettings) -> list[str]:
    """Every unsafe production value in `settings`, as messages naming variable and fix."""
    problems: list[str] = []
    env = settings.env_var

    if settings.debug:
        problems.append(
            f"{env('debug')} is true; debug shows exception details to clients (set it to false)"
        )

    if settings.auth.algorithm.upper().startswith(_HMAC_PREFIX):
        secret = settings.auth.jwt_secret
        problem = _secret_problem(
            env("auth", "jwt_secret"),
            secret.get_secret_value() if secret is not None else None,
            "JWT signing secret",
        )
        if problem:
            problems.append(problem)

    problems.extend(_auth_problems(settings))

    cursor = settings.pagination.cursor_secret
    if cursor is not None:
        problem = _secret_problem(
            env("pagination", "cursor_secret"), cursor.get_secret_value(), "cursor signing key"
        )
        if problem:
            problems.append(problem)

    cors = settings.cors
    if cors.allow_credentials and ("*" in cors.allow_origins or cors.allow_origin_regex == ".*"):
        problems.append(
            f"{env('cors', 'allow_origins')} allows every origin while "
            f"{env('cors', 'allow_credentials')} is true; any site could act as your users "
            "(list the exact origins, or turn credentials off)"
        )

    return problems
