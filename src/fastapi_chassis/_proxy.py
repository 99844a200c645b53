"""Who is the client? Forwarding headers believed only from trusted proxies.

`X-Forwarded-For`, `X-Forwarded-Proto` and `Forwarded` (RFC 7239) are client-controlled unless
the socket peer is a proxy we trust. The client is the rightmost address in the forwarding chain
that is not a trusted proxy: every hop to its right was appended by infrastructure we trust,
everything to its left could have been forged by the client.

Only one header family is read, the one the proxies write (`header`): a proxy that appends to
`X-Forwarded-For` usually passes a client's own `Forwarded` through untouched, so reading both
would let the client pick its address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from starlette.types import Scope

from fastapi_chassis.errors import ConfigurationError

if TYPE_CHECKING:
    from fastapi_chassis.settings import ChassisSettings

ForwardingHeader = Literal["x-forwarded", "forwarded"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(text: str) -> IPAddress | None:
    value = text.strip().strip('"')
    if value.startswith("["):  # [v6]:port
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _forwarded_for(value: str) -> list[str]:
    hops: list[str] = []
    for element in value.split(","):
        for pair in element.split(";"):
            key, sep, val = pair.strip().partition("=")
            if sep and key.strip().lower() == "for":
                hops.append(val.strip())
    return hops


def _forwarded_proto(value: str) -> str | None:
    proto = None
    for element in value.split(","):
        for pair in element.split(";"):
            key, sep, val = pair.strip().partition("=")
            if sep and key.strip().lower() == "proto":
                proto = val.strip().strip('"').lower()
    return proto


class TrustedProxies:
    """Resolve client address and scheme from a scope, honouring only trusted proxies."""

    __slots__ = ("_networks", "header")

    def __init__(
        self,
        trusted: Iterable[str],
        *,
        header: ForwardingHeader = "x-forwarded",
        setting: str = "CHASSIS_PROXY__TRUSTED",
    ) -> None:
        networks: list[IPNetwork] = []
        for entry in trusted:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"{setting} has {entry!r}, which is not an IP address or CIDR "
                    "(e.g. 10.0.0.0/8 or 127.0.0.1)"
                ) from exc
        self._networks = tuple(networks)
        self.header = header

    @classmethod
    def from_settings(cls, settings: ChassisSettings) -> TrustedProxies:
        """The resolver for `settings.proxy` (errors name the environment variable)."""
        return cls(
            settings.proxy.trusted,
            header=settings.proxy.header,
            setting=settings.env_var("proxy", "trusted"),
        )

    def __bool__(self) -> bool:
        return bool(self._networks)

    def is_trusted(self, address: IPAddress | None) -> bool:
        """Whether `address` is one of the configured proxies."""
        return address is not None and any(address in net for net in self._networks)

    def _peer(self, scope: Scope) -> str | None:
        client = scope.get("client")
        return str(client[0]) if client else None

    def client_ip(self, scope: Scope) -> str | None:
        """The client's address: the socket peer, or the nearest untrusted forwarded hop."""
        peer = self._peer(scope)
        if not self._networks or peer is None or not self.is_trusted(_parse_ip(peer)):
            return peer
        chain: list[str] = []
        forwarded = self.header == "forwarded"
        for name, value in scope.get("headers", ()):
            if forwarded and name == b"forwarded":
                chain.extend(_forwarded_for(value.decode("latin-1")))
            elif not forwarded and name == b"x-forwarded-for":
                chain.extend(value.decode("latin-1").split(","))
        client = peer
        for hop in reversed(chain):
            address = _parse_ip(hop)
            if address is None:
                # Garbage from an untrusted party: the hop that appended it is the client we know.
                return client
            client = str(address)
            if not self.is_trusted(address):
                return client
        return client

    def scheme(self, scope: Scope) -> str:
        """`https` or `http`, believing forwarded proto only from a trusted peer."""
        scheme = str(scope.get("scheme", "http"))
        if not self._networks or not self.is_trusted(_parse_ip(self._peer(scope) or "")):
            return scheme
        # The last value is the one the nearest (trusted) proxy wrote; earlier header lines and
        # list items may come from the client, as with the client address.
        forwarded = self.header == "forwarded"
        proto: str | None = None
        for name, value in scope.get("headers", ()):
            if forwarded and name == b"forwarded":
                proto = _forwarded_proto(value.decode("latin-1")) or proto
            elif not forwarded and name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
        return proto if proto in ("http", "https") else scheme
