from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from fastapi_chassis import AuthSettings, ChassisSettings, CorsSettings, PaginationSettings

STRONG = "Zx8-q2Lr7vNn4TtYp0aWc3Kd9Ue6Fh1JbGm5Si2Oo8Rl"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("CHASSIS_", "NOTES_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout


def test_dev_defaults_need_no_configuration() -> None:
    settings = ChassisSettings()
    assert settings.environment == "dev"
    assert settings.docs_enabled
    assert settings.redis.url is None
    assert settings.body_limit.max_bytes == 1024 * 1024


def test_env_vars_and_nested_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHASSIS_SERVICE_NAME", "notes")
    monkeypatch.setenv("CHASSIS_AUTH__ISSUER", "https://issuer.example")
    monkeypatch.setenv("CHASSIS_CORS__ALLOW_ORIGINS", '["https://a.example"]')
    monkeypatch.setenv("CHASSIS_BODY_LIMIT__MAX_BYTES", "2048")
    settings = ChassisSettings()
    assert settings.service_name == "notes"
    assert settings.auth.issuer == "https://issuer.example"
    assert settings.cors.allow_origins == ["https://a.example"]
    assert settings.body_limit.max_bytes == 2048


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "CHASSIS_SERVICE_NAME=from-dotenv\nCHASSIS_LOGGING__LEVEL=DEBUG\n"
    )
    settings = ChassisSettings()
    assert settings.service_name == "from-dotenv"
    assert settings.logging.level == "DEBUG"


def test_constructor_overrides_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHASSIS_SERVICE_NAME", "from-env")
    assert ChassisSettings(service_name="explicit").service_name == "explicit"


def test_subclass_with_own_fields_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    class Settings(ChassisSettings):
        model_config = SettingsConfigDict(env_prefix="NOTES_", env_nested_delimiter="__")
        database_url: str = "sqlite://"

    monkeypatch.setenv("NOTES_DATABASE_URL", "postgresql://db/notes")
    monkeypatch.setenv("NOTES_AUTH__AUDIENCE", "notes-api")
    monkeypatch.setenv("CHASSIS_SERVICE_NAME", "ignored")
    settings = Settings()
    assert settings.database_url == "postgresql://db/notes"
    assert settings.auth.audience == "notes-api"
    assert settings.service_name != "ignored"
    assert settings.env_var("auth", "jwt_secret") == "NOTES_AUTH__JWT_SECRET"


def test_groups_are_usable_alone() -> None:
    auth = AuthSettings(jwt_secret=SecretStr(STRONG), issuer="me")
    assert auth.issuer == "me"
    with pytest.raises(ValidationError, match="max_size"):
        PaginationSettings(default_size=500, max_size=100)


def test_unknown_group_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="jwt_secert"):
        AuthSettings(jwt_secert="typo")  # type: ignore[call-arg]


def _prod(**overrides: object) -> ChassisSettings:
    values: dict[str, object] = {
        "environment": "prod",
        "auth": AuthSettings(jwt_secret=SecretStr(STRONG)),
    }
    values.update(overrides)
    return ChassisSettings(**values)  # type: ignore[arg-type]


def test_safe_prod_config_passes_and_hides_docs() -> None:
    settings = _prod()
    assert not settings.docs_enabled
    assert settings.json_logs


def test_prod_docs_can_be_enabled_explicitly() -> None:
    from fastapi_chassis import DocsSettings

    assert _prod(docs=DocsSettings(enabled=True)).docs_enabled


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"debug": True}, "CHASSIS_DEBUG"),
        ({"auth": AuthSettings()}, "CHASSIS_AUTH__JWT_SECRET is not set"),
        (
            {"auth": AuthSettings(jwt_secret=SecretStr("short"))},
            "CHASSIS_AUTH__JWT_SECRET is 5 bytes",
        ),
        ({"auth": AuthSettings(jwt_secret=SecretStr("changeme"))}, "well-known"),
        (
            {
                "auth": AuthSettings(
                    jwt_secret=SecretStr(
                        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"
                    )
                )
            },
            "well-known",
        ),
        ({"auth": AuthSettings(jwt_secret=SecretStr("a" * 40))}, "repeats"),
        (
            {"cors": CorsSettings(allow_origins=["*"], allow_credentials=True)},
            "CHASSIS_CORS__ALLOW_ORIGINS",
        ),
        (
            {"pagination": PaginationSettings(cursor_secret=SecretStr("tiny"))},
            "CHASSIS_PAGINATION__CURSOR_SECRET",
        ),
    ],
)
def test_each_prod_rule_fails_alone_and_names_the_variable(
    overrides: dict[str, object], variable: str
) -> None:
    with pytest.raises(ValidationError) as info:
        _prod(**overrides)
    message = str(info.value)
    assert "1 unsafe setting(s)" in message
    assert variable in message


def test_all_prod_problems_are_reported_together() -> None:
    with pytest.raises(ValidationError) as info:
        ChassisSettings(
            environment="prod",
            debug=True,
            cors=CorsSettings(allow_origins=["*"], allow_credentials=True),
        )
    message = str(info.value)
    assert "3 unsafe setting(s)" in message
    for variable in ("CHASSIS_DEBUG", "CHASSIS_AUTH__JWT_SECRET", "CHASSIS_CORS__ALLOW_ORIGINS"):
        assert variable in message
    assert "secrets.token_urlsafe" in message


def test_prod_message_uses_subclass_prefix() -> None:
    class Settings(ChassisSettings):
        model_config = SettingsConfigDict(env_prefix="NOTES_", env_nested_delimiter="__")

    with pytest.raises(ValidationError, match="NOTES_DEBUG"):
        Settings(environment="prod", debug=True, auth=AuthSettings(jwt_secret=SecretStr(STRONG)))


def test_prod_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHASSIS_ENVIRONMENT", "prod")
    monkeypatch.setenv("CHASSIS_AUTH__JWT_SECRET", STRONG)
    assert ChassisSettings().is_prod


def test_masked_never_contains_secret_values() -> None:
    settings = _prod()
    assert STRONG not in str(settings.masked())
    assert STRONG not in repr(settings)


def test_masked_hides_passwords_inside_urls() -> None:
    from fastapi_chassis import TracingSettings

    settings = ChassisSettings(
        tracing=TracingSettings(endpoint="https://svc:hunter2-pw@collector.example:4318/v1/traces")
    )
    shown = settings.masked()["tracing"]["endpoint"]
    assert "hunter2-pw" not in shown
    assert shown == "https://svc:**********@collector.example:4318/v1/traces"
