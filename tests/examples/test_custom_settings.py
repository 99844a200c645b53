from __future__ import annotations

import os
from pathlib import Path

import pytest
from examples.custom_settings import NotesSettings, create_app
from fastapi.testclient import TestClient
from pydantic import ValidationError

SECRET = "k3Jq9vX2mP8sLw4nR7tY1bZ6cF0hD5gA"  # 32 random-looking bytes, test only


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith(("CHASSIS_", "NOTES_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    monkeypatch.setenv("NOTES_LOGGING__CONFIGURE", "false")
    return monkeypatch


def test_app_fields_and_nested_groups_come_from_the_notes_prefix(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("NOTES_SERVICE_NAME", "notes-eu")
    clean_env.setenv("NOTES_STORAGE__DATABASE_URL", "postgresql://db/notes")
    clean_env.setenv("NOTES_STORAGE__POOL_SIZE", "12")
    clean_env.setenv("NOTES_RATE_LIMIT__ENABLED", "true")
    clean_env.setenv("NOTES_RATE_LIMIT__DEFAULT", "30/minute")
    clean_env.setenv("CHASSIS_SERVICE_NAME", "ignored")  # another prefix: not ours
    with TestClient(create_app()) as client:
        assert client.get("/about").json() == {
            "service": "notes-eu",
            "database": "postgresql://db/notes",
            "pool_size": 12,
            "rate_limit": "30/minute",
        }


def test_a_whole_group_can_be_given_as_json(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NOTES_STORAGE", '{"database_url": "sqlite:///n.db", "pool_size": 3}')
    storage = NotesSettings().storage
    assert (storage.database_url, storage.pool_size) == ("sqlite:///n.db", 3)


def test_handlers_read_the_subclass_fields_through_the_typed_alias(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("NOTES_MAX_NOTE_LENGTH", "5")
    with TestClient(create_app()) as client:
        assert client.post("/notes", json={"text": "short"}).json() == {"length": 5}
        too_long = client.post("/notes", json={"text": "too long"})
    assert too_long.status_code == 422
    assert too_long.headers["content-type"] == "application/problem+json"
    assert too_long.json()["code"] == "note_too_long"
    assert "x-request-id" in too_long.headers


def test_chassis_groups_under_the_new_prefix_take_effect(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NOTES_RATE_LIMIT__ENABLED", "true")
    clean_env.setenv("NOTES_RATE_LIMIT__DEFAULT", "2/minute")
    with TestClient(create_app()) as client:
        statuses = [client.get("/about").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_production_checks_name_the_notes_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NOTES_ENVIRONMENT", "prod")
    clean_env.setenv("NOTES_DEBUG", "true")
    clean_env.setenv("CHASSIS_AUTH__JWT_SECRET", SECRET)  # wrong prefix: does not count
    with pytest.raises(ValidationError) as caught:
        NotesSettings()
    message = str(caught.value)
    assert "NOTES_AUTH__JWT_SECRET is not set" in message
    assert "NOTES_DEBUG is true" in message
    assert "CHASSIS_" not in message


def test_production_settings_pass_once_the_notes_variables_are_safe(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("NOTES_ENVIRONMENT", "prod")
    clean_env.setenv("NOTES_AUTH__JWT_SECRET", SECRET)
    settings = NotesSettings()
    assert settings.is_prod
    assert not settings.docs_enabled
    assert settings.env_var("storage", "pool_size") == "NOTES_STORAGE__POOL_SIZE"


def test_app_field_validation_errors_name_the_field(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NOTES_STORAGE__POOL_SIZE", "0")
    with pytest.raises(ValidationError, match=r"storage\.pool_size"):
        NotesSettings()
