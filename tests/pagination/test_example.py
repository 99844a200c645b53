from __future__ import annotations

from pathlib import Path

from tests.examples._run import run_python

ROOT = Path(__file__).resolve().parents[2]

WALK = """
from fastapi.testclient import TestClient
from examples.pagination_sqlite import app

with TestClient(app) as client:
    offset = []
    page = 1
    while True:
        body = client.get("/notes", params={"page": page, "size": 7}).json()
        offset += [n["id"] for n in body["items"]]
        if page >= body["pages"]:
            break
        page += 1
    forward, url = [], "/notes/feed?limit=7"
    while url:
        response = client.get(url)
        forward += [n["id"] for n in response.json()["items"]]
        url = response.links.get("next", {}).get("url")
    assert len(offset) == 50 and offset == forward, (offset, forward)
    backward, cursor = [], response.json()["prev_cursor"]
    backward = [n["id"] for n in response.json()["items"]]
    while cursor:
        body = client.get("/notes/feed", params={"limit": 7, "cursor": cursor}).json()
        backward = [n["id"] for n in body["items"]] + backward
        cursor = body["prev_cursor"]
    assert backward == forward, backward
    bad = client.get("/notes/feed", params={"cursor": "x" * 40})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor", bad.text
    other = client.get("/notes/feed", params={"tag": "home", "cursor": body["next_cursor"]})
    assert other.status_code == 400, other.text
print("ok")
"""


def test_sqlite_example_pages_agree_in_both_styles_and_directions() -> None:
    stdout = run_python(WALK)
    assert stdout.strip().splitlines()[-1] == "ok"  # access-log lines come first
