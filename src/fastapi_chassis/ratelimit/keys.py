"""Key functions: who a limit counts against.

A key function takes the `Request` and returns a string; requests with the same string share a
budget. Keys are compared with the `exempt_keys` setting as returned here, e.g. `"10.0.0.7"`,
`"x-api-key:abc123"` or `"sub:alice"`.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

__all__ = ["KeyFunc", "by_client_ip", "by_header", "by_subject"]

KeyFunc = Callable[[Request], str]


def by_client_ip(request: Request) -> str:
    """The client's IP: the socket peer, or the forwarded client when the peer is a trusted proxy.

    Trusted proxies come from `settings.proxy.trusted` of the chassis app serving the request;
    outside a chassis app, the socket peer is the client.
    """
    from fastapi_chassis.ratelimit._runtime import RateLimiting

    chassis = getattr(request.app.state, "chassis", None) if "app" in request.scope else None
    runtime = chassis.extensions.get("ratelimit") if chassis is not None else None
    if isinstance(runtime, RateLimiting):
        ip = runtime.proxies.client_ip(request.scope)
    else:
        client = request.scope.get("client")
        ip = str(client[0]) if client else None
    return ip or "unknown"


def by_header(name: str) -> KeyFunc:
    """Key by a request header (e.g. `X-API-Key`), falling back to the client IP without it.

    The value is whatever the client sent: anyone who knows another client's key spends that
    client's budget. Verify keys before you trust them for more than counting.
    """
    header = name.lower()

    def key(request: Request) -> str:
        value = request.headers.get(header)
        return f"{header}:{value}" if value else by_client_ip(request)

    key.__name__ = f"by_header_{header.replace('-', '_')}"
    return key


def by_subject(request: Request) -> str:
    """Key by the authenticated subject (`"sub:<subject>"`), else by client IP.

    Reads `request.state.principal.subject`, which authentication sets once it has verified the
    caller. Only route dependencies declared after the authentication dependency see it; the
    global middleware runs before authentication, so there this is the client IP.
    """
    principal = getattr(request.state, "principal", None)
    subject = getattr(principal, "subject", None)
    return f"sub:{subject}" if subject else by_client_ip(request)
