"""Signing and verification keys: loading, validation, key ids and JWKS entries.

A token's `kid` is attacker input. It is only ever looked up in the `KeySet` built here, and
every key is bound to exactly one algorithm of the configured family, so a token can never pick
a key or an algorithm the configuration did not name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import (
    Algorithm,
    ECAlgorithm,
    OKPAlgorithm,
    RSAAlgorithm,
    get_default_algorithms,
)

from fastapi_chassis.errors import ConfigurationError
from fastapi_chassis.settings import AuthSettings

#: HMAC algorithms and the shortest key each accepts (its hash size, RFC 7518 section 3.2).
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
ASYMMETRIC = frozenset({"RS256", "ES256", "EdDSA"})
RSA_MIN_BITS = 2048

# Letters, digits, `.`, `_`, `-`; no leading dot, no `..`: nothing that reads as a path or URL.
_KID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

EnvVar = Callable[[str], str]

# PyJWT's algorithm implementations, our own instances: `jwt.register_algorithm()` and
# `jwt.unregister_algorithm()` change PyJWT's process-wide table, never what verifies here.
_ALGORITHMS: dict[str, Algorithm] = get_default_algorithms()


def valid_kid(kid: object) -> bool:
    """Whether `kid` is a well-formed key id (short, no path or URL characters)."""
    return isinstance(kid, str) and _KID.fullmatch(kid) is not None and ".." not in kid


def is_hmac(algorithm: str) -> bool:
    return algorithm in HMAC_MIN_BYTES


@dataclass(frozen=True)
class Key:
    """One key bound to one algorithm. `signing` is None for verification-only keys."""

    kid: str
    algorithm: str
    verifying: Any
    signing: Any = None

    @cached_property
    def verifier(self) -> tuple[Algorithm, Any]:
        """PyJWT's algorithm object for this key, and the key prepared for it, made once.

        Kept on the key, so a key dropped from the configuration takes it along.

        Raises:
            jwt.InvalidAlgorithmError: PyJWT (or the installed `cryptography`) lacks it.
            jwt.InvalidKeyError: the key is below its algorithm's minimum length (as PyJWT's
                `enforce_minimum_key_length`).
        """
        algorithm = _ALGORITHMS.get(self.algorithm)
        if algorithm is None:
            raise jwt.InvalidAlgorithmError("Algorithm not supported")
        prepared = algorithm.prepare_key(self.verifying)
        problem = algorithm.check_key_length(prepared)
        if problem:
            raise jwt.InvalidKeyError(problem)
        return algorithm, prepared

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK (asymmetric keys only)."""
        jwk = _to_jwk(self.verifying)
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return jwk


@dataclass(frozen=True)
class KeySet:
    """The signing key and every key that verifies, by kid (the signing key included)."""

    signing: Key
    verifying: dict[str, Key] = field(default_factory=dict)

    def jwks(self) -> dict[str, Any]:
        """`{"keys": [...]}` with every public key; empty for HMAC."""
        if is_hmac(self.signing.algorithm):
            return {"keys": []}
        return {"keys": [key.public_jwk() for key in self.verifying.values()]}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _to_jwk(public_key: Any) -> dict[str, Any]:
    if isinstance(public_key, rsa.RSAPublicKey):
        return dict(RSAAlgorithm.to_jwk(public_key, as_dict=True))
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return dict(ECAlgorithm.to_jwk(public_key, as_dict=True))
    return dict(OKPAlgorithm.to_jwk(public_key, as_dict=True))


def thumbprint(public_key: Any) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the default kid of a public key."""
    jwk = _to_jwk(public_key)
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    required = {name: jwk[name] for name in members[jwk["kty"]]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def hmac_kid(secret: bytes) -> str:
    """Default kid of an HMAC secret: a keyed digest, so the id reveals nothing of the secret."""
    return "hs-" + _b64url(hmac.new(secret, b"fastapi-chassis key id", "sha256").digest())[:16]


_ephemeral_lock = threading.Lock()
_ephemeral: dict[str, Any] = {}


def ephemeral_key(algorithm: str) -> Any:
    """The random per-process key for `algorithm` (dev/test without a configured key)."""
    with _ephemeral_lock:
        if algorithm not in _ephemeral:
            if is_hmac(algorithm):
                _ephemeral[algorithm] = secrets.token_bytes(64)
            elif algorithm == "RS256":
                _ephemeral[algorithm] = rsa.generate_private_key(65537, RSA_MIN_BITS)
            elif algorithm == "ES256":
                _ephemeral[algorithm] = ec.generate_private_key(ec.SECP256R1())
            else:
                _ephemeral[algorithm] = ed25519.Ed25519PrivateKey.generate()
        return _ephemeral[algorithm]


def _check_asymmetric(key: Any, algorithm: str, source: str) -> None:
    if algorithm == "RS256":
        if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
            raise ConfigurationError(f"{source} is not an RSA key; RS256 needs one")
        if key.key_size < RSA_MIN_BITS:
            raise ConfigurationError(
                f"{source} is a {key.key_size}-bit RSA key; RS256 needs at least {RSA_MIN_BITS}"
            )
    elif algorithm == "ES256":
        if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) or not (
            isinstance(key.curve, ec.SECP256R1)
        ):
            raise ConfigurationError(f"{source} is not a P-256 EC key; ES256 needs one")
    elif not isinstance(
        key,
        (
            ed25519.Ed25519PrivateKey,
            ed25519.Ed25519PublicKey,
            ed448.Ed448PrivateKey,
            ed448.Ed448PublicKey,
        ),
    ):
        raise ConfigurationError(f"{source} is not an Ed25519/Ed448 key; EdDSA needs one")


def _pem_text(value: str, source: str) -> bytes:
    """PEM text given inline, or read from the file `value` names."""
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    path = Path(value)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"{source} is neither PEM text nor a readable file ({path}: {exc.strerror})"
        ) from exc


def _load_private(pem: bytes, algorithm: str, source: str) -> Any:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{source} is not an unencrypted PEM private key ({exc}); "
            f"generate one, e.g. `openssl genpkey -algorithm ed25519` for EdDSA"
        ) from exc
    _check_asymmetric(key, algorithm, source)
    return key


def _load_public(pem: bytes, algorithm: str, source: str) -> Any:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{source} is not a PEM public key ({exc}); export it with `openssl pkey -pubout`"
        ) from exc
    _check_asymmetric(key, algorithm, source)
    return key


def _hmac_secret(value: str, algorithm: str, source: str) -> bytes:
    secret = value.encode()
    minimum = HMAC_MIN_BYTES[algorithm]
    if len(secret) < minimum:
        raise ConfigurationError(
            f"{source} is {len(secret)} bytes; {algorithm} needs at least {minimum} "
            "(generate one with `python -c 'import secrets; print(secrets.token_urlsafe(64))'`)"
        )
    return secret


def _public_bytes(key: Any) -> bytes:
    if isinstance(key, bytes):
        return key
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def load_keys(settings: AuthSettings, env_var: EnvVar) -> KeySet:
    """Build the key set `settings` describe; a missing key becomes an ephemeral one.

    Raises:
        ConfigurationError: a key is unreadable, too weak, of the wrong type, or a kid is
            malformed or used twice for different keys.
    """
    algorithm = settings.algorithm
    if is_hmac(algorithm):
        if settings.jwt_secret is not None:
            secret = _hmac_secret(
                settings.jwt_secret.get_secret_value(), algorithm, env_var("jwt_secret")
            )
        else:
            secret = ephemeral_key(algorithm)
        signing = Key(kid="", algorithm=algorithm, verifying=secret, signing=secret)
        default_kid = hmac_kid(secret)
    else:
        if settings.private_key is not None:
            pem = settings.private_key.get_secret_value().encode()
            private = _load_private(pem, algorithm, env_var("private_key"))
        elif settings.private_key_file is not None:
            source = env_var("private_key_file")
            private = _load_private(
                _pem_text(str(settings.private_key_file), source), algorithm, source
            )
        else:
            private = ephemeral_key(algorithm)
        public = private.public_key()
        signing = Key(kid="", algorithm=algorithm, verifying=public, signing=private)
        default_kid = thumbprint(public)

    kid = settings.kid if settings.kid is not None else default_kid
    if not valid_kid(kid):
        raise ConfigurationError(
            f"{env_var('kid')}={kid!r} is not a valid key id "
            "(1-128 letters, digits, '.', '_' or '-'; no leading dot, no '..')"
        )
    signing = Key(
        kid=kid, algorithm=algorithm, verifying=signing.verifying, signing=signing.signing
    )
    verifying: dict[str, Key] = {kid: signing}

    source_base = env_var("verification_keys")
    for other_kid, value in settings.verification_keys.items():
        source = f"{source_base}[{other_kid!r}]"
        if not valid_kid(other_kid):
            raise ConfigurationError(f"{source}: {other_kid!r} is not a valid key id")
        raw = value.get_secret_value()
        if is_hmac(algorithm):
            material: Any = _hmac_secret(raw, algorithm, source)
        else:
            material = _load_public(_pem_text(raw, source), algorithm, source)
        if other_kid in verifying:
            if _public_bytes(verifying[other_kid].verifying) != _public_bytes(material):
                raise ConfigurationError(
                    f"{source} reuses the signing key's id {other_kid!r} for a different key; "
                    "give each key its own kid"
                )
            continue
        verifying[other_kid] = Key(kid=other_kid, algorithm=algorithm, verifying=material)
    return KeySet(signing=signing, verifying=verifying)
