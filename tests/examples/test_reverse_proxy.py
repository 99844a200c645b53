"""examples/reverse_proxy: forwarding headers are believed from trusted proxies only."""

from __future__ import annotations

import itertools
import json

from examples.reverse_proxy.app import PROXIES, app, create_app
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tests.examples._run import run_python

PROXY = ("10.0.0.2", 40000)  # inside PROXIES
STRANGER = ("203.0.113.9", 40000)  # a client reaching the service directly
HSTS = "strict-transport-security"

_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def fresh_ip() -> str:
    """A client address no other test used: the module-level app keeps its rate-limit counts."""
    return next(_addresses)


def test_spoofed_forwarding_headers_from_an_untrusted_peer_are_ignored() -> None:
    spoof = {
        "X-Forwarded-For": fresh_ip(),
        "X-Forwarded-Proto": "https",
        "Forwarded": f"for={fresh_ip()};proto=https",
    }
    with TestClient(app, client=("203.0.113.10", 5000)) as client:
        response = client.get("/whoami", headers=spoof)
    assert response.json() == {"client": "203.0.113.10", "peer": "203.0.113.10", "scheme": "http"}
    assert HSTS not in response.headers


def test_an_untrusted_peer_cannot_buy_a_fresh_rate_limit_budget_with_x_forwarded_for() -> None:
    with TestClient(app, client=("203.0.113.11", 5000)) as client:
        statuses = [
            client.get("/whoami", headers={"X-Forwarded-For": fresh_ip()}).status_code
            for _ in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


def test_a_trusted_proxy_names_the_client_and_each_client_gets_its_own_budget() -> None:
    alice, bob = fresh_ip(), fresh_ip()
    with TestClient(app, client=PROXY) as client:

        def get(ip: str, forged: str = "6.6.6.6") -> tuple[int, str]:
            response = client.get("/whoami", headers={"X-Forwarded-For": f"{forged}, {ip}"})
            return response.status_code, response.json().get("client", "")

        # The client forged "6.6.6.6"; the proxy appended the address it saw.
        assert [get(alice) for _ in range(3)] == [(200, alice)] * 3
        assert get(alice, forged="9.9.9.9")[0] == 429  # forging the prefix does not help
        assert get(bob) == (200, bob)


def test_forwarded_header_from_a_trusted_proxy_gives_client_and_https() -> None:
    ip = "2001:db8::7"
    with TestClient(create_app(header="forwarded"), client=PROXY) as client:
        response = client.get("/whoami", headers={"Forwarded": f'for="[{ip}]:4711";proto=https'})
    assert response.json()["client"] == ip
    assert response.headers[HSTS] == "max-age=63072000; includeSubDomains"


def test_hsts_only_when_a_trusted_proxy_says_the_request_came_over_https() -> None:
    with TestClient(app, client=PROXY) as client:
        via_https = client.get(
            "/whoami", headers={"X-Forwarded-For": fresh_ip(), "X-Forwarded-Proto": "https"}
        )
        via_http = client.get(
            "/whoami", headers={"X-Forwarded-For": fresh_ip(), "X-Forwarded-Proto": "http"}
        )
    assert HSTS in via_https.headers
    assert HSTS not in via_http.headers


def test_a_client_forwarded_header_passed_through_by_the_proxy_is_ignored() -> None:
    # The proxies write X-Forwarded-For (CHASSIS_PROXY__HEADER=x-forwarded, the default), so a
    # Forwarded header can only have come from the client and is not read.
    forged, real = fresh_ip(), fresh_ip()
    with TestClient(app, client=PROXY) as client:
        response = client.get(
            "/whoami", headers={"Forwarded": f"for={forged}", "X-Forwarded-For": real}
        )
    assert response.json()["client"] == real


ACCESS_LOG = """
    from fastapi.testclient import TestClient
    from examples.reverse_proxy.app import app

    with TestClient(app, client=("10.0.0.2", 40000)) as client:
        client.get("/whoami", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.200"})
    with TestClient(app, client=("203.0.113.12", 5000)) as client:
        client.get("/whoami", headers={"X-Forwarded-For": "198.51.100.200"})
"""


def test_access_log_records_the_resolved_client() -> None:
    output = run_python(ACCESS_LOG, CHASSIS_LOGGING__JSON_OUTPUT="true")
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "fastapi_chassis.access"]
    assert [line["client"] for line in access] == ["198.51.100.200", "203.0.113.12"]


def behind_uvicorn(forwarded_allow_ips: str) -> ProxyHeadersMiddleware:
    """The app as uvicorn serves it with --proxy-headers (its default)."""
    return ProxyHeadersMiddleware(app, trusted_hosts=forwarded_allow_ips)


def test_uvicorn_default_trusts_only_loopback_so_the_handler_sees_the_proxy() -> None:
    real = fresh_ip()
    served = behind_uvicorn("127.0.0.1")  # uvicorn's default --forwarded-allow-ips
    with TestClient(served, client=PROXY) as client:
        body = client.get(
            "/whoami", headers={"X-Forwarded-For": real, "X-Forwarded-Proto": "https"}
        ).json()
    # The chassis still resolves the client (log, limits, HSTS); request.client does not.
    assert body == {"client": real, "peer": PROXY[0], "scheme": "http"}


def test_uvicorn_and_chassis_trusting_the_same_proxies_agree() -> None:
    real = fresh_ip()
    served = behind_uvicorn(",".join(PROXIES))  # --forwarded-allow-ips 10.0.0.0/8
    with TestClient(served, client=PROXY) as client:
        response = client.get(
            "/whoami", headers={"X-Forwarded-For": f"6.6.6.6, {real}", "X-Forwarded-Proto": "https"}
        )
    assert response.json() == {"client": real, "peer": real, "scheme": "https"}
    assert HSTS in response.headers


def test_uvicorn_trusting_everyone_lets_direct_clients_spoof_whatever_the_chassis_says() -> None:
    forged = fresh_ip()
    served = behind_uvicorn("*")  # FORWARDED_ALLOW_IPS=* on a port clients can reach
    with TestClient(served, client=STRANGER) as client:
        body = client.get("/whoami", headers={"X-Forwarded-For": forged}).json()
    # uvicorn rewrote the peer before the chassis ran: the chassis cannot undo it.
    assert body["client"] == forged
