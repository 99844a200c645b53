"""Redaction of log events: sensitive keys at any depth, and pydantic secret values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Secret, SecretBytes, SecretStr
from structlog.typing import EventDict, WrappedLogger

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[redacted]"
"""What a redacted value renders as."""

_SECRET_TYPES = (Secret, SecretStr, SecretBytes)
_PLAIN = (str, int, float, bool, type(None))
_PLAIN_TYPES = frozenset(_PLAIN)
_MAX_DEPTH = 16
_CACHE_LIMIT = 4096


class Redactor:
    """Processor masking sensitive keys at any depth, and every pydantic secret value.

    A key is sensitive when, lower-cased with `-` read as `_`, it contains one of `keys`
    (`"token"` masks `access_token` and `X-Token`). Mappings, lists, tuples and header lists
    (`[(name, value), ...]`, str or bytes) are searched; they are copied, never mutated.
    """

    __slots__ = ("_cache", "_keys")

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = frozenset(_normalise(k) for k in keys if k)
        self._cache: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        """Whether values under `key` are masked."""
        hit = self._cache.get(key)
        if hit is None:
            norm = _normalise(key)
            hit = any(k in norm for k in self._keys)
            # Keys can be client-controlled (logged headers): bound the memo.
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = hit
        return hit

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        # Hot path (every log line): the memo is read inline, `is_sensitive` only on a miss.
        cache = self._cache
        for key, value in event_dict.items():
            hit = cache.get(key)
            if hit is None:
                hit = self.is_sensitive(key)
            if hit and key != "event":
                event_dict[key] = REDACTED
            elif type(value) not in _PLAIN_TYPES:
                event_dict[key] = self._scrub(value, 0)
        return event_dict

    def _key_is_sensitive(self, key: object) -> bool:
        if isinstance(key, str):
            return self.is_sensitive(key)
        if isinstance(key, bytes):
            return self.is_sensitive(key.decode("latin-1"))
        return False

    def _scrub(self, value: Any, depth: int) -> Any:
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, _SECRET_TYPES):
            return REDACTED
        if depth >= _MAX_DEPTH:
            return REDACTED
        if isinstance(value, Mapping):
            return {
                _text(k): REDACTED if self._key_is_sensitive(k) else self._scrub(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, tuple):
            if len(value) == 2 and self._key_is_sensitive(value[0]):
                return (value[0], REDACTED)
            return tuple(self._scrub(v, depth + 1) for v in value)
        if isinstance(value, list):
            return [self._scrub(v, depth + 1) for v in value]
        return value


def _normalise(key: str) -> str:
    return key.lower().replace("-", "_")


def _text(value: object) -> object:
    # ASGI headers are bytes; JSON objects need text keys.
    return value.decode("latin-1") if isinstance(value, bytes) else value
