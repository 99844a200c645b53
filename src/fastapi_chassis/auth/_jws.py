"""Reading a compact JWS for `TokenService.decode()`: strict segments, keys prepared once.

`jwt.PyJWT.decode()` spends most of an HS256 verification outside the signature: it checks
every base64url character of the three segments in a Python loop (the service has already
checked them with one regular expression) and prepares the key again on every call. This
module does the same reading with C-level steps, each key prepared once (`Key.verifier`); the
signature is still checked by PyJWT's own algorithm objects, and every rule `PyJWT.decode()`
applied with the service's options is applied here, in the same order, to the same effect:

- segments are base64url without padding, of a possible length, in canonical form (the unused
  bits of the last character are zero), so one token has exactly one spelling (PyJWT requires
  this from 2.14; with 2.13 the service is stricter than PyJWT was);
- the header's `alg` must be the key's algorithm, then the signature must verify;
- the payload is a JSON object; the required claims are present and not null;
- `iss` and `aud` are strings equal to the configured ones (`aud` must be absent or empty when
  none is configured); `sub` and `jti`, when present, are strings.

`tests/auth/test_jws.py` checks this against `PyJWT.decode()` on valid and mutated tokens.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi_chassis.auth._keys import Key
from fastapi_chassis.auth.principal import InvalidToken

__all__ = [
    "Claims",
    "check_registered",
    "read_header",
    "read_payload",
    "segment_bytes",
    "verify_signature",
]

Claims = dict[str, Any]


def segment_bytes(segment: str) -> bytes:
    """One base64url segment's bytes; `segment` holds only base64url characters (checked).

    Raises:
        InvalidToken: "malformed token" for a length no encoding has, or a non-canonical one.
    """
    missing = -len(segment) % 4
    if missing == 3:  # one character left over: 6 bits, less than a byte
        raise InvalidToken("malformed token")
    data = base64.urlsafe_b64decode(segment + "=" * missing)
    if base64.urlsafe_b64encode(data)[: len(segment)] != segment.encode("ascii"):
        raise InvalidToken("malformed token")  # non-zero unused bits: a second spelling
    return data


def read_header(segment: str) -> dict[str, Any]:
    """The JOSE header segment as a JSON object."""
    try:
        header = json.loads(segment_bytes(segment))
    except (ValueError, RecursionError):
        raise InvalidToken("malformed token") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token")
    return header


def verify_signature(key: Key, signing_input: bytes, signature: bytes) -> bool:
    """Whether `signature` is `key`'s over `signing_input` (PyJWT's algorithm verifies).

    Raises:
        jwt.InvalidAlgorithmError, jwt.InvalidKeyError: see `Key.verifier`.
    """
    algorithm, prepared = key.verifier
    return bool(algorithm.verify(signing_input, prepared, signature))


def read_payload(data: bytes) -> Claims:
    """The payload as a JSON object."""
    try:
        claims = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidToken("malformed token") from None
    if not isinstance(claims, dict):
        raise InvalidToken("malformed token")
    return claims


def check_registered(
    claims: Claims, required: tuple[str, ...], issuer: str | None, audience: str | None
) -> None:
    """PyJWT's claim checks for the service's options (`strict_aud`, exact `iss`)."""
    for name in required:
        if claims.get(name) is None:
            raise InvalidToken(f"missing claim {name}")
    if issuer is not None:
        if "iss" not in claims:
            raise InvalidToken("missing claim iss")
        if claims["iss"] != issuer:  # only a JSON string equals a str
            raise InvalidToken("wrong issuer")
    given = claims.get("aud")
    if audience is None:
        if given:
            raise InvalidToken("wrong audience")  # a token meant for a named audience
    elif not given:
        raise InvalidToken("missing claim aud")
    elif given != audience:  # one string: a list is refused as PyJWT's `strict_aud` does
        raise InvalidToken("wrong audience")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise InvalidToken("malformed token")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise InvalidToken("malformed token")
