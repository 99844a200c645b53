from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fastapi_chassis.cli import main
from tests.conftest import subprocess_env

STRONG = "Zx8-q2Lr7vNn4TtYp0aWc3Kd9Ue6Fh1JbGm5Si2Oo8Rl"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CHASSIS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_check_prints_masked_settings_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHASSIS_ENVIRONMENT", "prod")
    monkeypatch.setenv("CHASSIS_AUTH__JWT_SECRET", STRONG)
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert STRONG not in out + err
    data = json.loads(out)
    assert data["environment"] == "prod"
    assert data["auth"]["jwt_secret"] == "**********"


def test_check_exits_1_listing_every_problem_without_leaking_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHASSIS_ENVIRONMENT", "prod")
    monkeypatch.setenv("CHASSIS_DEBUG", "true")
    monkeypatch.setenv("CHASSIS_AUTH__JWT_SECRET", "hunter2-short")
    assert main(["check"]) == 1
    out, err = capsys.readouterr()
    assert "hunter2-short" not in out + err
    assert "CHASSIS_DEBUG" in err
    assert "CHASSIS_AUTH__JWT_SECRET is 13 bytes" in err


def test_check_with_custom_settings_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mysettings.py").write_text(
        "from fastapi_chassis import ChassisSettings\n"
        "class Settings(ChassisSettings):\n"
        "    database_url: str = 'sqlite://'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["check", "--settings", "mysettings:Settings"]) == 0
    assert json.loads(capsys.readouterr().out)["database_url"] == "sqlite://"


@pytest.mark.parametrize("spec", ["nocolon", "missing_module_xyz:Settings", "json:loads"])
def test_check_with_bad_settings_spec_exits_2(
    spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--settings", spec]) == 2
    assert "--settings" in capsys.readouterr().err


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fastapi_chassis", "check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == "dev"


def test_demo_app_imports_and_serves() -> None:
    from fastapi_chassis.demo import app

    with TestClient(app) as client:
        assert client.get("/").json()["service"] == "chassis-demo"
        missing = client.get("/items/99")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "item_not_found"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CHASSIS_PROXY__TRUSTED", '["not-an-ip"]', "CHASSIS_PROXY__TRUSTED"),
        ("CHASSIS_REQUEST_ID__HEADER", "X Bad", "settings are invalid"),
        ("CHASSIS_PROXY__TRUSTED", "10.0.0.1", "settings are invalid"),
    ],
)
def test_check_fails_on_settings_the_app_would_refuse_at_startup(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["check"]) == 1
    out, err = capsys.readouterr()
    assert expected in err
    assert "Traceback" not in out + err
