from __future__ import annotations

from pathlib import Path

import fastapi_chassis
from tests.examples._run import run_python

ROOT = Path(__file__).resolve().parents[1]


def test_all_names_exist_and_are_sorted() -> None:
    names = fastapi_chassis.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(fastapi_chassis, name), name


def test_every_public_non_module_name_is_in_all() -> None:
    import types

    public = {
        name
        for name, value in vars(fastapi_chassis).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public <= set(fastapi_chassis.__all__) | {"annotations"}


def test_py_typed_is_shipped() -> None:
    assert (Path(fastapi_chassis.__file__).parent / "py.typed").exists()


def test_settings_reference_covers_every_field() -> None:
    from fastapi_chassis import ChassisSettings
    from fastapi_chassis._settings_doc import render_settings_reference

    text = render_settings_reference()
    for group in ChassisSettings.groups:
        model = ChassisSettings.model_fields[group].annotation
        for field in model.model_fields:  # type: ignore[union-attr]
            assert f"CHASSIS_{group.upper()}__{field.upper()}" in text


def test_quickstart_example_runs() -> None:
    code = (
        "from fastapi.testclient import TestClient\n"
        "from examples.quickstart import app\n"
        "with TestClient(app) as c:\n"
        "    assert c.get('/notes/1').json()['note'] == 'buy milk'\n"
        "    r = c.get('/notes/2')\n"
        "    assert r.status_code == 404 and r.json()['code'] == 'note_not_found', r.text\n"
    )
    run_python(code)
