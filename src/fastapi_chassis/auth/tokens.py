"""`TokenService`: issue and verify JWT access and refresh tokens; rotation; revocation.

Usable alone (`TokenService(AuthSettings(...))`) or through the app (`Tokens` dependency).
Verification trusts nothing in the token before the signature checks out: the size is capped
before parsing, the `kid` is looked up only in the configured keys, each key is bound to one
algorithm of one family, `typ` separates access from refresh tokens, and every registered
claim is type-checked (PyJWT alone accepts a missing or string `exp`).
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import jwt

from fastapi_chassis.auth._jws import (
    check_registered,
    read_header,
    read_payload,
    segment_bytes,
    verify_signature,
)
from fastapi_chassis.auth._keys import EnvVar, Key, KeySet, load_keys, valid_kid
from fastapi_chassis.auth._verified import VerifiedTokens, time_problem
from fastapi_chassis.auth.principal import InvalidToken, Principal, TokenPair, parse_scopes
from fastapi_chassis.settings import AuthSettings
from fastapi_chassis.state import MemoryStore, StateStore

__all__ = ["ACCESS_TOKEN_TYPE", "REFRESH_TOKEN_TYPE", "RESERVED_CLAIMS", "TokenService"]

#: `typ` header of access tokens (RFC 9068) and of refresh tokens (never accepted for access).
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105
REFRESH_TOKEN_TYPE = "refresh+jwt"  # noqa: S105

#: Claims the service sets itself; extra claims may not use these names.
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "fam"})

TokenKind = Literal["access", "refresh"]
_TYP: dict[str, str] = {"access": ACCESS_TOKEN_TYPE, "refresh": REFRESH_TOKEN_TYPE}

# Compact JWS: three base64url segments; anything else is refused before any decoding.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Header members that change how a JWS is read (RFC 7515, 7797); our tokens never carry them.
_FORBIDDEN_HEADERS = ("crit", "b64")
_HEADER_CACHE_LIMIT = 64


def _default_env_var(name: str) -> str:
    return f"CHASSIS_AUTH__{name.upper()}"


class TokenService:
    """Issue and verify tokens with the keys and rules of `settings`.

    Args:
        settings: the auth settings; defaults apply when omitted (random per-process key).
        store: where revocations and used refresh tokens live; a private `MemoryStore` by
            default. Apps built with the chassis pass the app's shared store.
        clock: seconds since the epoch; injectable for tests.
        env_var: names a settings field's environment variable in error messages.

    Raises:
        ConfigurationError: a configured key is unusable (see `CHASSIS_AUTH__*`).
    """

    def __init__(
        self,
        settings: AuthSettings | None = None,
        *,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        env_var: EnvVar | None = None,
    ) -> None:
        self.settings = settings if settings is not None else AuthSettings()
        self.store: StateStore = store if store is not None else MemoryStore()
        self.clock = clock
        self.keys: KeySet = load_keys(self.settings, env_var or _default_env_var)
        self._jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True})
        # Parsed JOSE headers by their encoded segment: every token one key signs carries the
        # same header, so the per-request base64 + JSON parse to pick the key is done once.
        self._headers: dict[str, dict[str, Any]] = {}
        #: Access tokens that passed every check (see `_verified`); `verified_token_cache` = 0
        #: turns it off.
        self.verified = VerifiedTokens(self.settings.verified_token_cache)
        # Checked on every verification (`_jws.check_registered`), in this order, with the
        # time claims after them (`_check_claims`: the service's clock, strict number types).
        required = ["exp", "iat", "nbf", "sub", "jti"]
        if self.settings.issuer is not None:
            required.append("iss")
        if self.settings.audience is not None:
            required.append("aud")
        self._required = tuple(required)
        #: The signature check (`_jws.verify_signature`); tests count full verifications here.
        self._verify_signature: Callable[[Key, bytes, bytes], bool] = verify_signature

    # -- issuing -----------------------------------------------------------------------

    def _encode(
        self,
        kind: TokenKind,
        subject: str,
        scopes: Iterable[str],
        claims: Mapping[str, Any] | None,
        ttl: int,
        family: str | None,
    ) -> tuple[str, tuple[str, ...]]:
        if not isinstance(subject, str) or not subject:
            raise ValueError("subject must be a non-empty string")
        clash = RESERVED_CLAIMS.intersection(claims or {})
        if clash:
            raise ValueError(f"extra claims may not set {sorted(clash)}; they are set for you")
        granted = parse_scopes(scopes)
        now = int(self.clock())
        payload: dict[str, Any] = dict(claims or {})
        payload.update(sub=subject, iat=now, nbf=now, exp=now + ttl, jti=secrets.token_urlsafe(16))
        if self.settings.issuer is not None:
            payload["iss"] = self.settings.issuer
        if self.settings.audience is not None:
            payload["aud"] = self.settings.audience
        if granted:
            payload["scope"] = " ".join(granted)
        if family is not None:
            payload["fam"] = family
        key = self.keys.signing
        token = self._jwt.encode(
            payload,
            key.signing,
            algorithm=key.algorithm,
            headers={"kid": key.kid, "typ": _TYP[kind]},
        )
        return token, granted

    def issue_access_token(
        self,
        subject: str,
        *,
        scopes: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        ttl: int | None = None,
    ) -> str:
        """A signed access token for `subject` with `scopes` and extra `claims`.

        Raises:
            ValueError: empty subject, malformed scope, or an extra claim with a reserved name.
        """
        ttl = ttl if ttl is not None else self.settings.access_token_ttl
        return self._encode("access", subject, scopes, claims, ttl, None)[0]

    def issue_tokens(
        self,
        subject: str,
        *,
        scopes: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        family: str | None = None,
    ) -> TokenPair:
        """An access token and, when enabled, a refresh token of one family (one login)."""
        refresh = self.settings.refresh_tokens
        if refresh and family is None:
            family = secrets.token_urlsafe(16)
        access, granted = self._encode(
            "access", subject, scopes, claims, self.settings.access_token_ttl, family
        )
        refresh_token = None
        if refresh:
            refresh_token, _ = self._encode(
                "refresh", subject, granted, claims, self.settings.refresh_token_ttl, family
            )
        return TokenPair(
            access_token=access,
            expires_in=self.settings.access_token_ttl,
            refresh_token=refresh_token,
            scope=" ".join(granted),
        )

    # -- verifying ---------------------------------------------------------------------

    def decode(self, token: str, *, kind: TokenKind = "access") -> dict[str, Any]:
        """The claims of `token` after every check except revocation (no I/O).

        Raises:
            InvalidToken: with a short reason (also sent in `WWW-Authenticate`).
        """
        if not isinstance(token, str):
            raise InvalidToken("malformed token")
        settings = self.settings
        if len(token) > settings.max_token_bytes:
            raise InvalidToken("token too large")
        remember = kind == "access" and type(token) is str and self.verified.limit > 0
        rules = (settings.issuer, settings.audience)
        if remember:
            remembered = self.verified.get(
                token, now=self.clock(), leeway=settings.leeway, keys=self.keys, rules=rules
            )
            if remembered is not None:
                return remembered
        if not _COMPACT.fullmatch(token):
            raise InvalidToken("malformed token")
        segment = token[: token.index(".")]
        header = self._headers.get(segment)
        if header is None:
            header = read_header(segment)
            if len(self._headers) < _HEADER_CACHE_LIMIT:  # segments can be attacker-chosen
                self._headers[segment] = header
        kid = header.get("kid")
        if not isinstance(kid, str) or not valid_kid(kid):
            raise InvalidToken("unknown key")
        key = self.keys.verifying.get(kid)
        if key is None:
            raise InvalidToken("unknown key")
        if header.get("typ") != _TYP[kind]:
            raise InvalidToken(
                f"not an {kind} token" if kind == "access" else "not a refresh token"
            )
        if any(name in header for name in _FORBIDDEN_HEADERS):
            raise InvalidToken("unsupported token header")
        second = token.rindex(".")
        payload = segment_bytes(token[len(segment) + 1 : second])
        signature = segment_bytes(token[second + 1 :])
        if header.get("alg") != key.algorithm:
            raise InvalidToken("algorithm not allowed")
        try:
            valid = self._verify_signature(key, token[:second].encode("ascii"), signature)
        except jwt.InvalidAlgorithmError:
            raise InvalidToken("algorithm not allowed") from None
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if not valid:
            raise InvalidToken("bad signature")
        claims = read_payload(payload)
        check_registered(claims, self._required, settings.issuer, settings.audience)
        times = self._check_claims(claims, kind)
        if remember:
            self.verified.remember(token, claims, key, times, rules)
        return claims

    def _check_claims(self, claims: dict[str, Any], kind: TokenKind) -> dict[str, float]:
        """Check the time claims (as numbers, against `clock`), the scope and the family."""
        now = self.clock()
        leeway = self.settings.leeway
        times: dict[str, float] = {}
        for name in ("exp", "nbf", "iat"):
            value = claims[name]
            # bool is an int subclass, and PyJWT would also take "123": neither is a NumericDate.
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidToken(f"{name} is not a number")
            try:
                times[name] = float(value)
            except OverflowError:  # an integer too large for a float
                raise InvalidToken(f"{name} is not a number") from None
            if not math.isfinite(times[name]):
                raise InvalidToken(f"{name} is not a number")
        problem = time_problem(times, now, leeway)
        if problem is not None:
            raise InvalidToken(problem)
        if not claims["sub"] or not claims["jti"]:
            raise InvalidToken("empty sub or jti")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("scope is not a string")
        try:
            parse_scopes(scope)
        except ValueError:
            raise InvalidToken("malformed scope") from None
        family = claims.get("fam")
        if (family is not None and not isinstance(family, str)) or (
            kind == "refresh" and not family
        ):
            raise InvalidToken("malformed token family")
        return times

    async def verify(self, token: str, *, kind: TokenKind = "access") -> dict[str, Any]:
        """`decode()` plus the revocation check (token and family, one store round trip).

        Raises:
            InvalidToken: as `decode()`, or "token revoked".
            StateUnavailable: the shared store did not answer (fails closed, 503).
        """
        claims = self.decode(token, kind=kind)
        if self.settings.check_revocation:
            await self._check_not_revoked(claims)
        return claims

    async def _check_not_revoked(self, claims: Mapping[str, Any]) -> None:
        keys = [_revoked_key(claims["jti"])]
        if claims.get("fam"):
            keys.append(_family_key(claims["fam"]))
        if await self.store.exists(*keys):
            raise InvalidToken("token revoked")

    async def principal(self, token: str) -> Principal:
        """The `Principal` of a verified access token."""
        return Principal.from_claims(await self.verify(token))

    # -- refresh and revocation --------------------------------------------------------

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: a new token pair of the same family for a valid, unused refresh token.

        A refresh token is good for one use. Presenting it again means it leaked (or two
        clients share it): the whole family is revoked, access tokens included.

        Raises:
            InvalidToken: invalid, revoked or reused refresh token, or refresh tokens disabled.
        """
        if not self.settings.refresh_tokens:
            raise InvalidToken("refresh tokens are disabled")
        claims = self.decode(refresh_token, kind="refresh")
        # Always, even with `check_revocation` off: a family revoked for reuse must stay dead.
        await self._check_not_revoked(claims)
        remaining = max(float(claims["exp"]) - self.clock(), 0.0) + self.settings.leeway
        if not await self.store.set_if_absent(_used_key(claims["jti"]), remaining):
            await self.revoke_family(claims["fam"])
            raise InvalidToken("refresh token reused; the session is revoked")
        extra = {k: v for k, v in claims.items() if k not in RESERVED_CLAIMS}
        return self.issue_tokens(
            claims["sub"],
            scopes=parse_scopes(claims.get("scope", "")),
            claims=extra,
            family=claims["fam"],
        )

    def _longest_ttl(self) -> float:
        ttl = self.settings.access_token_ttl
        if self.settings.refresh_tokens:
            ttl = max(ttl, self.settings.refresh_token_ttl)
        return float(ttl + self.settings.leeway)

    async def revoke(self, jti: str, *, expires_at: float | None = None) -> None:
        """Revoke one token by its `jti` until `expires_at` (its `exp`; unknown: longest TTL)."""
        if expires_at is None:
            ttl = self._longest_ttl()
        else:
            ttl = max(expires_at - self.clock(), 0.0) + self.settings.leeway
        await self.store.set_if_absent(_revoked_key(jti), ttl)

    async def revoke_family(self, family: str) -> None:
        """Revoke every token of one login (refresh and access tokens sharing `fam`)."""
        await self.store.set_if_absent(_family_key(family), self._longest_ttl())

    async def revoke_claims(self, claims: Mapping[str, Any]) -> None:
        """Revoke the token these verified claims came from, and its family when it has one."""
        await self.revoke(str(claims["jti"]), expires_at=float(claims["exp"]))
        if claims.get("fam"):
            await self.revoke_family(str(claims["fam"]))

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of the public verification keys (empty for HMAC)."""
        return self.keys.jwks()


def _revoked_key(jti: str) -> str:
    return f"auth:revoked:{jti}"


def _family_key(family: str) -> str:
    return f"auth:family:{family}"


def _used_key(jti: str) -> str:
    return f"auth:used:{jti}"
