"""Key functions: who a limit counts against.

A key function takes the `Request` and returns a string; requests with the same string share a
budget, e.g. `"203.0.113.7"`, `"2001:db8:1:2::/64"` or `"sub:alice"`.

IPv6 clients are counted per network prefix (`/64` by default, `rate_limit.ipv6_prefix`): one
subscriber usually holds a whole /64 and can pick any of its 2**64 addresses, so counting single
IPv6 addresses would give it a fresh budget per request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

from starlette.requests import Request

__all__ = ["DEFAULT_IPV6_PREFIX", "KeyFunc", "by_client_ip", "by_header", "by_subject", "ip_key"]

KeyFunc = Callable[[Request], str]

DEFAULT_IPV6_PREFIX = 64


@lru_cache(maxsize=4096)
def ip_key(ip: str | None, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The budget key of a client address: IPv4 as is, IPv6 as its `/ipv6_prefix` network.

    An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) counts as its IPv4 address; a missing or
    unparsable address is `"unknown"` or the text itself.
    """
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if ipv6_prefix < 128:
            return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


def by_client_ip(request: Request) -> str:
    """The client's IP: the socket peer, or the forwarded client when the peer is a trusted proxy.

    IPv4 addresses are keys as they are; IPv6 addresses are grouped by their `/64` network (the
    app's `rate_limit.ipv6_prefix`), e.g. `"2001:db8:1:2::/64"`. Trusted proxies come from
    `settings.proxy.trusted` of the chassis app serving the request; outside a chassis app, the
    socket peer is the client.
    """
    from fastapi_chassis.ratelimit._runtime import RateLimiting

    chassis = getattr(request.app.state, "chassis", None) if "app" in request.scope else None
    runtime = chassis.extensions.get("ratelimit") if chassis is not None else None
    if isinstance(runtime, RateLimiting):
        return runtime.client_key(request.scope)
    client = request.scope.get("client")
    return ip_key(str(client[0]) if client else None)


def by_header(name: str) -> KeyFunc:
    """Key by a request header (e.g. `X-API-Key`), falling back to the client IP without it.

    The value is whatever the client sent: a client inventing a fresh value per request gets a
    fresh budget, and anyone who knows another client's key spends that client's budget. Use it
    only on routes that verify the key (an authentication dependency declared before the
    limit), never for a limit meant to stop anonymous clients. Header values are never matched
    against `exempt_keys`, since any client could send the exempt value.
    """
    return _HeaderKey(name.lower())


class _HeaderKey:
    __slots__ = ("header", "prefix")

    def __init__(self, header: str) -> None:
        self.header = header
        self.prefix = f"{header}:"

    def __call__(self, request: Request) -> str:
        value = request.headers.get(self.header)
        return self.prefix + value if value else by_client_ip(request)

    def __repr__(self) -> str:
        return f"by_header({self.header!r})"


def exemptible(key: KeyFunc, value: str) -> bool:
    """Whether a key `value` made by `key` may be matched against `exempt_keys`."""
    return not (isinstance(key, _HeaderKey) and value.startswith(key.prefix))


def by_subject(request: Request) -> str:
    """Key by the authenticated subject (`"sub:<subject>"`), else by client IP.

    Reads `request.state.principal.subject`, which authentication sets once it has verified the
    caller. Only route dependencies declared after the authentication dependency see it; the
    global middleware runs before authentication, so there this is the client IP.
    """
    principal = getattr(request.state, "principal", None)
    subject = getattr(principal, "subject", None)
    return f"sub:{subject}" if subject else by_client_ip(request)
