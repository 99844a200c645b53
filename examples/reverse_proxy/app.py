"""A service behind a reverse proxy: whose forwarding headers to believe, and who sees what.

Only peers listed in `proxy.trusted` (env: `CHASSIS_PROXY__TRUSTED='["10.0.0.0/8"]'`) may name
the client with `X-Forwarded-For` and the scheme with `X-Forwarded-Proto` (or, with
`CHASSIS_PROXY__HEADER=forwarded`, with RFC 7239 `Forwarded` instead; never both). The access
log, the rate limiter and HSTS all use that answer. Run it the way
`docs/examples/reverse-proxy.md` explains:

    uvicorn examples.reverse_proxy.app:app --host 0.0.0.0 --port 8000 \
        --forwarded-allow-ips 10.0.0.0/8
"""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI, Request

from fastapi_chassis import ChassisSettings, ProxySettings, RateLimitSettings, build_app
from fastapi_chassis.ratelimit import get_rate_limiting

PROXIES = ["10.0.0.0/8"]  # the proxy tier's addresses: never a range clients can come from


def create_app(header: Literal["x-forwarded", "forwarded"] = "x-forwarded") -> FastAPI:
    """The service; `header` is the forwarding header family the proxies write."""
    settings = ChassisSettings(
        service_name="orders",
        proxy=ProxySettings(trusted=PROXIES, header=header),
        # Low enough to watch it work: each client address gets its own budget.
        rate_limit=RateLimitSettings(enabled=True, default="3/minute"),
    )
    app = build_app(settings)

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str | None]:
        peer = request.client.host if request.client else None
        proxies = get_rate_limiting(request.app).proxies
        return {
            # What the access log and the rate limiter see: the peer, or the forwarded client
            # when the peer is a trusted proxy (the limiter counts an IPv6 client per /64).
            "client": proxies.client_ip(request.scope),
            # What the ASGI server put in the scope: the socket peer, unless the server itself
            # rewrote it from forwarding headers (uvicorn's --proxy-headers).
            "peer": peer,
            "scheme": request.url.scheme,
        }

    return app


app = create_app()
