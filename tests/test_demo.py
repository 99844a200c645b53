"""The demo service: notes owned by their users, scopes, paging, domain errors, its settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fastapi_chassis import ChassisSettings
from fastapi_chassis.demo import create_app, demo_settings
from tests.auth.conftest import auth_settings
from tests.conftest import subprocess_env


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = ChassisSettings(service_name="demo", auth=auth_settings(refresh_tokens=True))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def login(client: TestClient, username: str, scope: str | None = None) -> dict[str, str]:
    created = client.post("/users", json={"username": username, "password": "correct horse"})
    assert created.status_code in (201, 409), created.text
    form = {"username": username, "password": "correct horse"}
    if scope is not None:
        form["scope"] = scope
    token = client.post("/auth/token", data=form)
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_notes_crud_is_owned_by_the_current_user(client: TestClient) -> None:
    alice = login(client, "alice")
    created = client.post("/notes", headers=alice, json={"title": "Groceries", "body": "eggs"})
    assert created.status_code == 201
    note = created.json()
    assert note["owner"] == "alice"
    assert created.headers["Location"] == f"/notes/{note['id']}"
    assert client.get(f"/notes/{note['id']}", headers=alice).json() == note

    patched = client.patch(f"/notes/{note['id']}", headers=alice, json={"body": "eggs, milk"})
    assert patched.status_code == 200
    assert patched.json()["body"] == "eggs, milk"
    assert patched.json()["title"] == "Groceries"
    assert patched.json()["updated_at"] >= note["updated_at"]

    assert client.delete(f"/notes/{note['id']}", headers=alice).status_code == 204
    gone = client.get(f"/notes/{note['id']}", headers=alice)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["code"] == "note_not_found"


def test_other_users_see_shared_notes_read_only_and_private_notes_not_at_all(
    client: TestClient,
) -> None:
    alice, bob = login(client, "alice"), login(client, "bob")
    private = client.post("/notes", headers=alice, json={"title": "diary"}).json()
    shared = client.post("/notes", headers=alice, json={"title": "recipe", "shared": True}).json()

    hidden = client.get(f"/notes/{private['id']}", headers=bob)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "note_not_found")
    assert client.get(f"/notes/{shared['id']}", headers=bob).json()["title"] == "recipe"
    for response in (
        client.patch(f"/notes/{shared['id']}", headers=bob, json={"title": "mine now"}),
        client.delete(f"/notes/{shared['id']}", headers=bob),
    ):
        assert (response.status_code, response.json()["code"]) == (403, "not_note_owner")
    assert client.get("/notes", headers=bob).json()["items"] == []


def test_a_duplicate_title_is_a_conflict_naming_the_existing_note(client: TestClient) -> None:
    alice = login(client, "alice")
    first = client.post("/notes", headers=alice, json={"title": "Plans"}).json()
    other = client.post("/notes", headers=alice, json={"title": "other"}).json()
    for response in (
        client.post("/notes", headers=alice, json={"title": "plans"}),
        client.patch(f"/notes/{other['id']}", headers=alice, json={"title": "PLANS"}),
    ):
        assert response.status_code == 409
        assert response.json()["code"] == "note_title_taken"
        assert response.json()["note_id"] == first["id"]
    # Another user may use the same title; renaming a note to its own title is no conflict.
    assert client.post("/notes", headers=login(client, "bob"), json={"title": "Plans"}).is_success
    same = client.patch(f"/notes/{first['id']}", headers=alice, json={"title": "Plans"})
    assert same.status_code == 200


def test_notes_need_their_scopes(client: TestClient) -> None:
    reader = login(client, "alice", scope="notes:read")
    denied = client.post("/notes", headers=reader, json={"title": "x"})
    assert denied.status_code == 403
    assert denied.json()["missing_scopes"] == ["notes:write"]
    assert client.get("/notes", headers=reader).status_code == 200
    assert client.get("/notes").status_code == 401


def test_listing_walks_every_note_once_in_each_order_and_binds_cursors(
    client: TestClient,
) -> None:
    alice = login(client, "alice")
    titles = [f"note {i % 4}-{i:02d}" for i in range(23)]
    ids = [client.post("/notes", headers=alice, json={"title": t}).json()["id"] for t in titles]

    def walk(**params: str) -> list[dict[str, object]]:
        seen: list[dict[str, object]] = []
        query = {"limit": "5", **params}
        while True:
            page = client.get("/notes", headers=alice, params=query).json()
            seen += page["items"]
            if page["next_cursor"] is None:
                return seen
            query = {**query, "cursor": page["next_cursor"]}

    assert [n["id"] for n in walk()] == sorted(ids, reverse=True)
    assert [n["id"] for n in walk(sort="created_at")] == sorted(ids)
    assert [n["title"] for n in walk(sort="title")] == sorted(titles)
    assert [n["title"] for n in walk(q="NOTE 2")] == sorted(
        (t for t in titles if "note 2" in t), key=lambda t: -ids[titles.index(t)]
    )

    first = client.get("/notes", headers=alice, params={"limit": 5}).json()
    foreign = client.get(
        "/notes", headers=alice, params={"sort": "title", "cursor": first["next_cursor"]}
    )
    assert foreign.status_code == 400
    assert foreign.headers["content-type"] == "application/problem+json"


def test_whoami_reads_the_token_alone_and_names_the_worker(client: TestClient) -> None:
    alice = login(client, "alice", scope="notes:read")
    body = client.get("/whoami", headers=alice).json()
    assert body == {"subject": "alice", "scopes": ["notes:read"], "worker": os.getpid()}
    assert client.get("/").json()["worker"] == os.getpid()


def test_login_is_rate_limited_per_client() -> None:
    settings = ChassisSettings(service_name="demo", auth=auth_settings())
    with TestClient(create_app(settings)) as client:
        answers = [
            client.post("/auth/token", data={"username": "nobody", "password": "wrong pass"})
            for _ in range(11)
        ]
    assert [a.status_code for a in answers] == [401] * 10 + [429]
    assert answers[-1].headers["content-type"] == "application/problem+json"
    assert int(answers[-1].headers["Retry-After"]) > 0


def test_registration_is_rate_limited_per_client() -> None:
    settings = ChassisSettings(service_name="demo", auth=auth_settings())
    with TestClient(create_app(settings)) as client:
        answers = [
            client.post("/users", json={"username": f"user{i}", "password": "correct horse"})
            for i in range(6)
        ]
    assert [a.status_code for a in answers] == [201] * 5 + [429]


def test_demo_settings_come_from_the_environment_with_demo_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("CHASSIS_"):
            monkeypatch.delenv(name)
    defaults = demo_settings()
    assert defaults.service_name == "chassis-demo"
    assert defaults.auth.refresh_tokens is True
    assert defaults.tracing.exporter == "console"
    assert defaults.tracing.enabled is False
    assert defaults.metrics.enabled is True  # the prometheus extra is installed in the test venvs

    monkeypatch.setenv("CHASSIS_SERVICE_NAME", "notes")
    monkeypatch.setenv("CHASSIS_AUTH__REFRESH_TOKENS", "false")
    monkeypatch.setenv("CHASSIS_AUTH__JWT_SECRET", "s" * 40)
    monkeypatch.setenv("CHASSIS_AUTH__ACCESS_TOKEN_TTL", "60")
    monkeypatch.setenv("CHASSIS_METRICS__ENABLED", "false")
    monkeypatch.setenv("CHASSIS_TRACING__ENABLED", "true")
    configured = demo_settings()
    assert configured.service_name == "notes"
    assert configured.auth.refresh_tokens is False
    assert configured.auth.access_token_ttl == 60
    assert configured.metrics.enabled is False
    assert (configured.tracing.enabled, configured.tracing.exporter) == (True, "console")

    monkeypatch.setenv("CHASSIS_AUTH__REFRESH_TOKENS", "true")
    monkeypatch.setenv("CHASSIS_TRACING__EXPORTER", "none")
    kept = demo_settings()
    assert kept.auth.refresh_tokens is True
    assert kept.auth.jwt_secret is not None
    assert kept.auth.jwt_secret.get_secret_value() == "s" * 40
    assert kept.tracing.exporter == "none"


def test_the_demo_serves_metrics_and_readiness_with_its_own_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("CHASSIS_"):
            monkeypatch.delenv(name)
    with TestClient(create_app()) as client:
        client.get("/items/1")
        scrape = client.get("/metrics")
        ready = client.get("/readyz").json()
    assert scrape.status_code == 200
    assert 'handler="/items/{item_id}"' in scrape.text
    assert ready["checks"]["storage"]["status"] == "ok"


def test_tracing_enabled_by_environment_prints_spans_to_the_console() -> None:
    # A child process: the console exporter writes to the stdout it saw at import time.
    script = (
        "from fastapi.testclient import TestClient\n"
        "from fastapi_chassis.demo import app\n"
        "with TestClient(app) as client:\n"
        "    print('BODY', client.get('/items/99').text, flush=True)\n"
    )
    env = {k: v for k, v in subprocess_env().items() if not k.startswith("CHASSIS_")}
    env.update(CHASSIS_TRACING__ENABLED="true", CHASSIS_LOGGING__LEVEL="WARNING")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout.split("BODY ", 1)[1].splitlines()[0])
    assert '"name": "GET /items/{item_id}"' in done.stdout
    assert f'"trace_id": "0x{body["trace_id"]}"' in done.stdout
