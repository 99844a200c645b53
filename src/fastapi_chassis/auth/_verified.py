"""Access tokens that passed every check, so a client's next request skips the signature check.

A client sends the same access token with each request until it expires, and checking the
signature and parsing the claims is most of the cost of authenticating one (an ES256 token far
more than an HS256 one). `VerifiedTokens` remembers the claims of tokens `TokenService.decode()`
has fully verified, keyed by the whole token text, so only a byte-identical token is served
from it. What can change between two requests is checked on every hit: the time claims against
the service's clock, and that the key which verified the token is still configured (a retired
key stops its tokens at once). Revocation is not part of `decode()` and stays a store lookup
per request. Entries are evicted oldest first once `limit` is reached.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, NamedTuple

from fastapi_chassis.auth._keys import Key, KeySet

_SCALARS = frozenset((str, int, float, bool, type(None)))


class _Entry(NamedTuple):
    claims: dict[str, Any]
    key: Key
    exp: float
    nbf: float
    iat: float
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

    def get(self, token: str, *, now: float, leeway: float, keys: KeySet) -> dict[str, Any] | None:
        """A fresh copy of `token`'s claims when it is remembered and still valid, else None."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if (
            entry.exp + leeway <= now
            or entry.nbf - leeway > now
            or entry.iat - leeway > now
            or keys.verifying.get(entry.key.kid) is not entry.key
        ):
            # The full check decides (and says why); a token that passes again is re-added.
            self._entries.pop(token, None)
            return None
        if entry.nested:
            return copy.deepcopy(entry.claims)
        return dict(entry.claims)

    def remember(
        self, token: str, claims: dict[str, Any], key: Key, times: dict[str, float]
    ) -> None:
        """Remember `token`, which `key` verified, with its checked claims and time claims."""
        if self.limit <= 0:
            return
        nested = any(type(value) not in _SCALARS for value in claims.values())
        entry = _Entry(
            copy.deepcopy(claims) if nested else dict(claims),
            key,
            times["exp"],
            times["nbf"],
            times["iat"],
            nested,
        )
        with self._lock:
            entries = self._entries
            while len(entries) >= self.limit:
                try:
                    del entries[next(iter(entries))]
                except (KeyError, RuntimeError, StopIteration):  # a reader evicted it first
                    break
            entries[token] = entry

    def clear(self) -> None:
        """Forget every token (the next request of each is fully verified again)."""
        self._entries.clear()
