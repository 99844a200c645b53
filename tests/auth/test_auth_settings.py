"""Auth settings: production refusals for keys and argon2 cost; coherent values."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from fastapi_chassis import AuthSettings, ChassisSettings
from tests.auth.conftest import SECRET


def prod(**auth: Any) -> ChassisSettings:
    return ChassisSettings(environment="prod", auth=AuthSettings(**auth))


def test_prod_accepts_strong_defaults() -> None:
    assert prod(jwt_secret=SecretStr(SECRET)).auth.argon2_memory_cost == 65536


def test_prod_refuses_an_asymmetric_algorithm_without_a_private_key() -> None:
    with pytest.raises(ValidationError, match="CHASSIS_AUTH__PRIVATE_KEY"):
        prod(algorithm="ES256")


def test_prod_refuses_weak_hmac_verification_keys() -> None:
    with pytest.raises(ValidationError, match=r"CHASSIS_AUTH__VERIFICATION_KEYS\['old'\]"):
        prod(jwt_secret=SecretStr(SECRET), verification_keys={"old": SecretStr("changeme")})


def test_prod_refuses_argon2_below_the_owasp_minimum() -> None:
    with pytest.raises(ValidationError, match="CHASSIS_AUTH__ARGON2_MEMORY_COST"):
        prod(jwt_secret=SecretStr(SECRET), argon2_memory_cost=8192, argon2_time_cost=2)
    # OWASP's own minimum passes.
    assert (
        prod(
            jwt_secret=SecretStr(SECRET), argon2_memory_cost=19456, argon2_time_cost=2
        ).auth.argon2_time_cost
        == 2
    )


def test_incoherent_values_are_refused_anywhere() -> None:
    with pytest.raises(ValidationError, match=r"8 x auth\.argon2_parallelism"):
        AuthSettings(argon2_memory_cost=16, argon2_parallelism=4)
    with pytest.raises(ValidationError, match="not both"):
        AuthSettings(private_key=SecretStr("x"), private_key_file="/k.pem")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        AuthSettings(algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        AuthSettings(leeway=3600)


def test_verification_keys_and_algorithm_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHASSIS_AUTH__ALGORITHM", "EdDSA")
    monkeypatch.setenv(
        "CHASSIS_AUTH__VERIFICATION_KEYS", '{"2025-01": "-----BEGIN PUBLIC KEY-----"}'
    )
    settings = ChassisSettings()
    assert settings.auth.algorithm == "EdDSA"
    assert settings.auth.verification_keys["2025-01"].get_secret_value().startswith("-----BEGIN")
    assert settings.masked()["auth"]["verification_keys"] == {"2025-01": "**********"}
