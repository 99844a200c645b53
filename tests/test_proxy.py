from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastapi_chassis import ConfigurationError
from fastapi_chassis._proxy import TrustedProxies


def scope(peer: str | None, *headers: tuple[str, str], scheme: str = "http") -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": scheme,
        "client": (peer, 1234) if peer else None,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    proxies = TrustedProxies([])
    assert proxies.client_ip(scope("203.0.113.9", ("X-Forwarded-For", "1.2.3.4"))) == "203.0.113.9"


def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    spoof = scope("203.0.113.9", ("X-Forwarded-For", "1.2.3.4"))
    assert proxies.client_ip(spoof) == "203.0.113.9"


def test_rightmost_untrusted_hop_is_the_client() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    # client forged "6.6.6.6"; the edge proxy appended the real peer 198.51.100.7
    s = scope("10.0.0.2", ("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.0.0.1"))
    assert proxies.client_ip(s) == "198.51.100.7"


def test_multiple_forwarded_for_header_lines_are_joined_in_order() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    s = scope("10.0.0.2", ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7"))
    assert proxies.client_ip(s) == "198.51.100.7"


def test_rfc7239_forwarded_header_with_ipv6_and_ports() -> None:
    proxies = TrustedProxies(["127.0.0.1"], header="forwarded")
    s = scope("127.0.0.1", ("Forwarded", 'for="[2001:db8::1]:4711";proto=https, for=127.0.0.1'))
    assert proxies.client_ip(s) == "2001:db8::1"
    assert proxies.scheme(s) == "https"


def test_garbage_hop_stops_the_walk() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    s = scope("10.0.0.2", ("X-Forwarded-For", "1.1.1.1, not-an-ip"))
    assert proxies.client_ip(s) == "10.0.0.2"


def test_all_hops_trusted_gives_leftmost() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client_ip(scope("10.0.0.2", ("X-Forwarded-For", "10.1.1.1"))) == "10.1.1.1"


def test_forwarded_proto_only_from_trusted_peer() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.scheme(scope("10.0.0.2", ("X-Forwarded-Proto", "https"))) == "https"
    assert proxies.scheme(scope("203.0.113.1", ("X-Forwarded-Proto", "https"))) == "http"
    assert proxies.scheme(scope("203.0.113.1", scheme="https")) == "https"


def test_bad_proxy_entry_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="CHASSIS_PROXY__TRUSTED"):
        TrustedProxies(["10.0.0.0/8", "proxy.internal"])


@given(st.lists(st.text(max_size=30), max_size=8))
def test_client_ip_never_raises_and_untrusted_peer_always_wins(hops: list[str]) -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    header = ", ".join(hops)
    try:
        header.encode("latin-1")
    except UnicodeEncodeError:
        return
    assert proxies.client_ip(scope("203.0.113.5", ("X-Forwarded-For", header))) == "203.0.113.5"
    proxies.client_ip(scope("10.0.0.5", ("X-Forwarded-For", header)))


@pytest.mark.parametrize(
    ("header", "expected"), [("x-forwarded", "198.51.100.7"), ("forwarded", "6.6.6.6")]
)
def test_only_the_configured_header_family_is_read(header: str, expected: str) -> None:
    # A proxy appending X-Forwarded-For passes the client's own Forwarded through (and vice
    # versa); reading both would let the client choose its address.
    proxies = TrustedProxies(["10.0.0.0/8"], header=header)  # type: ignore[arg-type]
    s = scope(
        "10.0.0.2",
        ("Forwarded", "for=6.6.6.6;proto=https"),
        ("X-Forwarded-For", "198.51.100.7"),
        ("X-Forwarded-Proto", "http"),
    )
    assert proxies.client_ip(s) == expected
    assert proxies.scheme(s) == ("http" if header == "x-forwarded" else "https")


def test_forwarded_proto_uses_the_last_header_line_like_the_client_address() -> None:
    # The client sent "https" itself; the trusted proxy appended the real scheme after it.
    proxies = TrustedProxies(["10.0.0.0/8"])
    s = scope("10.0.0.2", ("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http"))
    assert proxies.scheme(s) == "http"
