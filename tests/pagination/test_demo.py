from __future__ import annotations

from fastapi.testclient import TestClient

from fastapi_chassis import ChassisSettings
from fastapi_chassis.demo import create_app


def test_demo_catalog_pages_by_offset_and_by_cursor() -> None:
    client = TestClient(create_app(ChassisSettings(service_name="demo-test")))
    body = client.get("/catalog", params={"page": 2, "size": 10, "max_price": 300}).json()
    assert (body["total"], body["pages"], len(body["items"])) == (60, 6, 10)
    prices: list[int] = []
    ids: list[int] = []
    url = "/catalog/feed?limit=50&max_price=300"
    while url:
        page = client.get(url).json()
        prices += [p["price"] for p in page["items"]]
        ids += [p["id"] for p in page["items"]]
        url = (
            page["next_cursor"]
            and f"/catalog/feed?limit=50&max_price=300&cursor={page['next_cursor']}"
        )
    assert len(ids) == len(set(ids)) == 60
    assert prices == sorted(prices)
    bad = client.get("/catalog/feed", params={"cursor": "garbage"})
    assert bad.status_code == 400
