"""Access tokens that passed every check, so a client's next request skips the signature check.

A client sends the same access token with each request until it expires, and checking the
signature and parsing the claims is most of the cost of authenticating one (an ES256 token far
more than an HS256 one). `VerifiedTokens` remembers the claims of tokens `TokenService.decode()`
has fully verified, keyed by the whole token text, so only a byte-identical token is served
from it. What can change between two requests is checked on every hit: the time claims against
the service's clock, that the key which verified the token is still configured (a retired key
stops its tokens at once), and that the issuer and audience required are still those it was
checked against. Revocation is not part of `decode()` and stays a store lookup per request.
Entries are evicted oldest first once `limit` is reached.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, NamedTuple

from fastapi_chassis.auth._keys import Key, KeySet

_SCALARS = frozenset((str, int, float, bool, type(None)))


def time_problem(times: dict[str, float], now: float, leeway: float) -> str | None:
    """Why the time claims (`exp`, `nbf`, `iat` as numbers) refuse a token now, or None."""
    if times["exp"] + leeway <= now:
        return "token expired"
    if times["nbf"] - leeway > now:
        return "token not yet valid"
    if times["iat"] - leeway > now:
        return "token issued in the future"
    return None


class _Entry(NamedTuple):
    claims: dict[str, Any]
    key: Key
    #: The issuer and audience the claims were checked against.
    rules: tuple[str | None, str | None]
    #: `exp`, `nbf` and `iat` as numbers.
    times: dict[str, float]
    #: Some claim holds a list or object: hand out deep copies, so callers cannot edit ours.
    nested: bool


class VerifiedTokens:
    """At most `limit` verified tokens' claims (0: remember nothing)."""

    __slots__ = ("_entries", "_lock", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self,
        token: str,
        *,
        now: float,
        leeway: float,
        keys: KeySet,
        rules: tuple[str | None, str | None],
    ) -> dict[str, Any] | None:
        """A fresh copy of `token`'s claims when it is remembered and still valid, else None.

        `token` must be a `str` itself (a subclass could redefine equality or hashing).
        """
        entry = self._entries.get(token)
        if entry is None:
            return None
        if (
            time_problem(entry.times, now, leeway) is not None
            or keys.verifying.get(entry.key.kid) is not entry.key
            or entry.rules != rules
        ):
            # The full check decides (and says why); a token that passes again is re-added.
            self._entries.pop(token, None)
            return None
        if entry.nested:
            claims = _copy(entry.claims)
            if claims is None:
                self._entries.pop(token, None)
            return claims
        return dict(entry.claims)

    def remember(
        self,
        token: str,
        claims: dict[str, Any],
        key: Key,
        times: dict[str, float],
        rules: tuple[str | None, str | None],
    ) -> None:
        """Remember `token`, which `key` verified against `rules` (issuer, audience)."""
        if self.limit <= 0:
            return
        nested = any(type(value) not in _SCALARS for value in claims.values())
        kept = _copy(claims) if nested else dict(claims)
        if kept is None:
            return  # too deeply nested to copy: verified in full each time instead
        entry = _Entry(kept, key, rules, times, nested)
        with self._lock:
            entries = self._entries
            while len(entries) >= self.limit:
                try:
                    del entries[next(iter(entries))]
                except (KeyError, RuntimeError, StopIteration):  # a reader evicted it first
                    break
            entries[token] = entry


def _copy(claims: dict[str, Any]) -> dict[str, Any] | None:
    """A deep copy of `claims`, or None when they nest deeper than `copy` can go."""
    try:
        return copy.deepcopy(claims)
    except RecursionError:
        return None
