"""Fixtures for the auth tests: cheap argon2 parameters, a fixed secret, test keys, a clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import SecretStr

from fastapi_chassis import AuthSettings

SECRET = "k3Y-9fQz_T1mR8wV2pL6sN4xB7cJ0hD5gE3aU8yK1oI2rW6t"  # 48 random characters
OTHER_SECRET = "Zq8-Lm3Nx7_Vb2Kc5Hj9Pd4Ws6Rt1Yg0Fe8Ua3Io7Qs2Dx5"

# argon2id at its cheapest: tests exercise behaviour, not cost.
CHEAP_ARGON2: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_cost": 8,
    "argon2_parallelism": 1,
}


def auth_settings(**overrides: Any) -> AuthSettings:
    """AuthSettings with a fixed strong secret and cheap argon2, plus `overrides`."""
    values: dict[str, Any] = {"jwt_secret": SecretStr(SECRET), **CHEAP_ARGON2}
    values.update(overrides)
    return AuthSettings(**values)


class Clock:
    """A settable clock (seconds since the epoch)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _pem_private(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _pem_public(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="session")
def keypairs() -> dict[str, tuple[str, str]]:
    """(private PEM, public PEM) per algorithm, plus a second key per algorithm for rotation."""
    makers: dict[str, Callable[[], Any]] = {
        "RS256": lambda: rsa.generate_private_key(65537, 2048),
        "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate,
    }
    pairs: dict[str, tuple[str, str]] = {}
    for algorithm, make in makers.items():
        for suffix in ("", "-2"):
            key = make()
            pairs[algorithm + suffix] = (_pem_private(key), _pem_public(key))
    return pairs
