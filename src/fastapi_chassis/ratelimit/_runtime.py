"""What the middleware and the route dependencies of one app share: limiter, options, events."""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from starlette.types import Scope

from fastapi_chassis._counters import count_rate_limited
from fastapi_chassis._proxy import IPNetwork, TrustedProxies
from fastapi_chassis.errors import PROBLEM_JSON, ConfigurationError, problem_body, problem_bytes
from fastapi_chassis.ratelimit._limits import Limit
from fastapi_chassis.ratelimit.backends import Decision, MemoryLimiter, RateLimiter
from fastapi_chassis.ratelimit.keys import DEFAULT_IPV6_PREFIX, ip_key

logger = logging.getLogger("fastapi_chassis.ratelimit")


@dataclass(frozen=True, slots=True)
class RateLimitEvent:
    """Something a metrics exporter may count: a rejection or a store failure."""

    kind: Literal["rejected", "store_unavailable"]
    #: The policy name ("default" for the global limit, the route's name or path otherwise).
    policy: str
    #: For "store_unavailable": whether the request was let through.
    fail_open: bool = False


RateLimitListener = Callable[[RateLimitEvent], None]


@dataclass
class RateLimiting:
    """Per-app rate-limit runtime, published as `chassis.extensions["ratelimit"]`."""

    limiter: RateLimiter = field(default_factory=MemoryLimiter)
    proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies(()))
    exempt_keys: frozenset[str] = frozenset()
    #: IPv6 clients share one budget per network of this prefix length (IPv4: per address).
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX
    fail_open: bool = True
    legacy_headers: bool = False
    #: Base of problem `type` URIs (settings.errors.type_base_url); None: `about:blank`.
    problem_type_base: str | None = None
    #: Minimum seconds between two "store unavailable" warnings in the log.
    warn_interval: float = 60.0
    listeners: list[RateLimitListener] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    _next_warning: float = field(default=-math.inf, repr=False)
    _suppressed: int = field(default=0, repr=False)

    def is_exempt(self, key: str) -> bool:
        """Whether `key` is listed in `exempt_keys`, or is an IP key inside a listed IP or CIDR.

        An IPv6 key stands for a whole network (`/64` by default), so listing one IPv6 address
        exempts the network it shares its budget with.
        """
        if key in self.exempt_keys:
            return True
        networks = _exempt_networks(self.exempt_keys)
        if not networks:
            return False
        network = _key_network(key)
        return network is not None and any(
            network.version == exempt.version and network.overlaps(exempt) for exempt in networks
        )

    def client_key(self, scope: Scope) -> str:
        """The client-IP key of a request: its address, or its IPv6 network."""
        return ip_key(self.proxies.client_ip(scope), self.ipv6_prefix)

    def emit(self, event: RateLimitEvent) -> None:
        """Call every listener with `event`; a failing listener is logged, never raised."""
        if event.kind == "rejected":
            count_rate_limited(event.policy)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a broken metrics hook must never fail a request
                logger.exception("rate-limit listener %r failed", listener)

    def store_failed(self, policy: str, exc: BaseException) -> None:
        """Log (at most once per `warn_interval`) and emit a store failure."""
        now = self.clock()
        if now >= self._next_warning:
            logger.warning(
                "rate-limit store unavailable (%s); failing %s; %d similar failure(s) "
                "not logged since the last warning",
                getattr(exc, "extra", {}).get("reason", type(exc).__name__),
                "open" if self.fail_open else "closed",
                self._suppressed,
            )
            self._next_warning = now + self.warn_interval
            self._suppressed = 0
        else:
            self._suppressed += 1
        self.emit(RateLimitEvent("store_unavailable", policy, self.fail_open))

    def problem(self, status: int, title: str, code: str, detail: str) -> bytes:
        """Body of a problem+json response sent from raw ASGI (`PROBLEM_CONTENT_TYPE`)."""
        type_ = f"{self.problem_type_base.rstrip('/')}/{code}" if self.problem_type_base else None
        body: dict[str, Any] = problem_body(
            status, title=title, code=code, detail=detail, type_=type_ or "about:blank"
        )
        return problem_bytes(body)


@lru_cache(maxsize=8)
def _exempt_networks(keys: frozenset[str]) -> tuple[IPNetwork, ...]:
    return tuple(net for net in map(_key_network, keys) if net is not None)


@lru_cache(maxsize=4096)
def _key_network(key: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(key, strict=False)
    except ValueError:
        return None


def _check_name(name: str) -> str:
    if not name or not all(" " <= c <= "~" and c not in '"\\' for c in name):
        raise ConfigurationError(
            f"rate-limit policy name {name!r} must be printable ASCII without quotes or "
            "backslashes (it is sent in the RateLimit-Policy header)"
        )
    return name


def policy_names(name: str, limits: Sequence[Limit]) -> tuple[str, ...]:
    """One header name per limit: `name`, or `name-unit` when there are several."""
    _check_name(name)
    if len(limits) == 1:
        return (name,)
    return tuple(f"{name}-{limit.unit}" for limit in limits)


def policy_header(names: Iterable[str], limits: Sequence[Limit]) -> bytes:
    """`RateLimit-Policy` value: `"name";q=100;w=60` per limit."""
    return ", ".join(
        f'"{n}";q={limit.count};w={limit.period}' for n, limit in zip(names, limits, strict=True)
    ).encode("ascii")


def decision_headers(
    names: Sequence[str], policy: bytes, decision: Decision, *, legacy: bool
) -> list[tuple[bytes, bytes]]:
    """`RateLimit-Policy`, `RateLimit`, `Retry-After` on rejection, and legacy names if asked."""
    items = ", ".join(
        f'"{n}";r={s.remaining};t={math.ceil(s.reset)}'
        for n, s in zip(names, decision.statuses, strict=True)
    )
    headers = [(b"ratelimit-policy", policy), (b"ratelimit", items.encode("ascii"))]
    if not decision.allowed:
        headers.append((b"retry-after", str(retry_after_seconds(decision)).encode()))
    if legacy:
        tightest = min(decision.statuses, key=lambda s: (s.remaining, -s.reset))
        headers += [
            (b"x-ratelimit-limit", str(tightest.limit.count).encode()),
            (b"x-ratelimit-remaining", str(tightest.remaining).encode()),
            (b"x-ratelimit-reset", str(math.ceil(tightest.reset)).encode()),
        ]
    return headers


def retry_after_seconds(decision: Decision) -> int:
    """Whole seconds, rounded up, so a client that waits this long is never early."""
    return max(math.ceil(decision.retry_after), 1)


def rejection_detail(decision: Decision) -> str:
    """The 429 `detail`: which limits are spent and when to come back."""
    blocking = [str(s.limit) for s in decision.statuses if s.remaining == 0]
    return (
        f"rate limit {', '.join(blocking) or 'exceeded'} reached; "
        f"retry after {retry_after_seconds(decision)} s"
    )


PROBLEM_CONTENT_TYPE = PROBLEM_JSON.encode()
