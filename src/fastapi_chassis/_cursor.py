"""Cursor tokens: typed sort-key values, HMAC-SHA256 signed, bound to one listing.

A token is URL-safe base64 (no padding) of::

    version (1 byte) | payload (compact JSON) | tag (32 bytes)

    tag = HMAC-SHA256(key, binding | version | payload)

`binding` is a SHA-256 digest of the sort spec and the caller's query fingerprint, so a cursor
minted for one listing (other filters, other order, other key) fails verification in another.
The tag is checked before the payload is parsed: nothing an attacker wrote reaches `json.loads`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID

from fastapi_chassis.errors import BadRequest

__all__ = [
    "CURSOR_VERSION",
    "Direction",
    "InvalidCursor",
    "decode_cursor",
    "derive_cursor_key",
    "encode_cursor",
    "process_cursor_key",
    "query_binding",
]

CURSOR_VERSION = 1
TAG_BYTES = 32
Direction = Literal["after", "before"]

_HKDF_SALT = b"fastapi-chassis"
_HKDF_INFO = b"fastapi-chassis pagination cursor v1"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_DIRECTIONS: dict[str, Direction] = {"a": "after", "b": "before"}
_RESTART = "; request the listing again without a cursor"

# A random key for this process, used when no secret is configured (dev/test, one worker).
_PROCESS_KEY = secrets.token_bytes(32)


class InvalidCursor(BadRequest):
    """A cursor that was altered, truncated, too long, stale, or minted for another listing."""

    code = "invalid_cursor"
    title = "Invalid cursor"


@lru_cache(maxsize=16)
def derive_cursor_key(secret: bytes) -> bytes:
    """The 32-byte signing key for `secret` (HKDF-SHA256, RFC 5869, cursor-specific `info`).

    Domain separation means a JWT secret can seed cursor keys without a cursor tag ever being a
    valid token signature, and one secret yields unrelated keys for unrelated purposes.
    """
    prk = hmac.new(_HKDF_SALT, secret, hashlib.sha256).digest()
    return hmac.new(prk, _HKDF_INFO + b"\x01", hashlib.sha256).digest()


def process_cursor_key() -> bytes:
    """This process' random key: cursors it signs are refused by every other process."""
    return _PROCESS_KEY


def query_binding(spec_fingerprint: str, query: Any) -> bytes:
    """Digest of what a cursor is bound to: the sort spec and the caller's query fingerprint."""
    try:
        canonical = json.dumps(
            [spec_fingerprint, query], sort_keys=True, separators=(",", ":"), default=str
        )
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the cursor query fingerprint must be JSON-like data (dicts, lists, scalars): {exc}"
        ) from exc
    return hashlib.sha256(canonical.encode()).digest()


def _encode_value(value: Any) -> Any:
    # bool before int and datetime before date: each is a subclass of the next.
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return {"f": value.hex()}
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, time):
        return {"t": value.isoformat()}
    if isinstance(value, UUID):
        return {"u": value.hex}
    if isinstance(value, Decimal):
        return {"D": str(value)}
    raise TypeError(
        f"a sort key value of type {type(value).__name__} cannot go in a cursor; use str, int, "
        "float, bool, None, datetime, date, time, UUID or Decimal columns as sort keys"
    )


_DECODERS: dict[str, Any] = {
    "f": float.fromhex,
    "dt": datetime.fromisoformat,
    "d": date.fromisoformat,
    "t": time.fromisoformat,
    "u": UUID,
    "D": Decimal,
}


def _decode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag in _DECODERS and isinstance(text, str):
            return _DECODERS[tag](text)
    raise ValueError(f"unknown cursor value {value!r}")


def encode_cursor(
    key: bytes, binding: bytes, direction: Direction, values: Sequence[Any], max_length: int
) -> str:
    """A signed token for the boundary row `values`, read in `direction`.

    Raises:
        ValueError: the token would be longer than `max_length` (long text sort keys).
    """
    payload = json.dumps(
        [direction[0], [_encode_value(v) for v in values]], separators=(",", ":")
    ).encode()
    body = bytes([CURSOR_VERSION]) + payload
    tag = hmac.new(key, binding + body, hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode("ascii")
    if len(token) > max_length:
        raise ValueError(
            f"a cursor for this row is {len(token)} characters, over the {max_length} limit; "
            "sort by shorter keys or raise CHASSIS_PAGINATION__CURSOR_MAX_LENGTH"
        )
    return token


def decode_cursor(
    key: bytes, binding: bytes, token: str, max_length: int
) -> tuple[Direction, tuple[Any, ...]]:
    """Verify `token` and return its direction and boundary values.

    Raises:
        InvalidCursor: anything but an intact cursor this key signed for this listing.
    """
    if len(token) > max_length:
        raise InvalidCursor(f"the cursor is longer than {max_length} characters{_RESTART}")
    if not _TOKEN.fullmatch(token):
        raise InvalidCursor(f"the cursor is not URL-safe base64{_RESTART}")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCursor(f"the cursor is not valid base64{_RESTART}") from None
    if len(raw) < 1 + TAG_BYTES:
        raise InvalidCursor(f"the cursor is truncated{_RESTART}")
    if raw[0] != CURSOR_VERSION:
        raise InvalidCursor(f"the cursor has an unsupported format version ({raw[0]}){_RESTART}")
    body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    expected = hmac.new(key, binding + body, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise InvalidCursor(
            "the cursor was altered, or was issued for another listing, sort order or "
            f"server key{_RESTART}"
        )
    try:
        direction_code, raw_values = json.loads(body[1:])
        direction = _DIRECTIONS[direction_code]
        values = tuple(_decode_value(v) for v in raw_values)
    except (ValueError, TypeError, KeyError):
        raise InvalidCursor(f"the cursor payload is malformed{_RESTART}") from None
    return direction, values
