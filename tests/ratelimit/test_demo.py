from __future__ import annotations

import pytest

from fastapi_chassis import ChassisSettings
from fastapi_chassis.demo import create_app
from tests.ratelimit.conftest import serve


@pytest.mark.anyio
async def test_demo_limited_endpoint_allows_five_a_minute() -> None:
    app = create_app(ChassisSettings(service_name="chassis-demo"))
    async with serve(app) as http:
        responses = [await http.get("/limited") for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert responses[0].headers["RateLimit"] == '"/limited";r=4;t=60'
    assert int(responses[-1].headers["Retry-After"]) > 0
