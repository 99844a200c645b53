"""TokenService: issuing, verifying, hostile tokens, algorithms, key rotation, key config."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from fastapi_chassis import ConfigurationError, InvalidToken, Principal, TokenService
from tests.auth.conftest import OTHER_SECRET, SECRET, Clock, auth_settings


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"sig") -> str:
    """A token assembled by hand, for inputs PyJWT refuses to produce."""
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(clock: Clock, **overrides: Any) -> dict[str, Any]:
    now = int(clock())
    values: dict[str, Any] = {
        "sub": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "jti-1",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def forge(service: TokenService, payload: dict[str, Any], **headers: Any) -> str:
    """A token signed with the service's real secret, with arbitrary claims and headers."""
    header = {"kid": service.keys.signing.kid, "typ": "at+jwt", **headers}
    return jwt.encode(payload, SECRET, algorithm="HS256", headers=header)


def reason(service: TokenService, token: str, kind: Any = "access") -> str:
    with pytest.raises(InvalidToken) as info:
        service.decode(token, kind=kind)
    assert info.value.status_code == 401
    assert info.value.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    return str(info.value.detail)


@pytest.fixture
def service(clock: Clock) -> TokenService:
    return TokenService(auth_settings(issuer="https://id.example", audience="notes"), clock=clock)


def test_issued_token_carries_registered_claims_kid_and_typ(
    service: TokenService, clock: Clock
) -> None:
    token = service.issue_access_token(
        "alice", scopes=["notes:read", "notes:write"], claims={"tenant": "t1"}
    )
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "kid": service.keys.signing.kid, "typ": "at+jwt"}
    decoded = service.decode(token)
    now = int(clock())
    assert decoded["sub"] == "alice"
    assert (decoded["iat"], decoded["nbf"], decoded["exp"]) == (now, now, now + 900)
    assert decoded["iss"] == "https://id.example"
    assert decoded["aud"] == "notes"
    assert decoded["scope"] == "notes:read notes:write"
    assert decoded["tenant"] == "t1"
    assert len(decoded["jti"]) >= 16
    principal = Principal.from_claims(decoded)
    assert principal.subject == "alice"
    assert principal.scopes == {"notes:read", "notes:write"}
    assert principal.has_scopes("notes:read")
    assert not principal.has_scopes("admin")


def test_each_token_gets_a_fresh_jti(service: TokenService) -> None:
    first = service.decode(service.issue_access_token("alice"))["jti"]
    second = service.decode(service.issue_access_token("alice"))["jti"]
    assert first != second


def test_alg_none_is_rejected_with_or_without_a_signature(
    service: TokenService, clock: Clock
) -> None:
    header = {"alg": "none", "kid": service.keys.signing.kid, "typ": "at+jwt"}
    payload = claims(clock, iss="https://id.example", aud="notes")
    unsigned = compact(header, payload, b"")
    assert reason(service, unsigned) == "malformed token"
    assert reason(service, compact(header, payload, b"anything")) == "algorithm not allowed"


def test_hs256_signed_with_the_rsa_public_key_is_rejected(
    keypairs: dict[str, tuple[str, str]], clock: Clock
) -> None:
    private_pem, public_pem = keypairs["RS256"]
    rs = TokenService(auth_settings(algorithm="RS256", private_key=SecretStr(private_pem)))
    header = {"alg": "HS256", "kid": rs.keys.signing.kid, "typ": "at+jwt"}
    token = hs256(header, claims(clock), public_pem.encode())
    assert reason(rs, token) == "algorithm not allowed"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"iss": "https://evil.example"}, "wrong issuer"),
        ({"iss": "https://id.example/"}, "wrong issuer"),
        ({"aud": "other-api"}, "wrong audience"),
        ({"aud": ["notes", "other-api"]}, "wrong audience"),
        ({"iss": None}, "missing claim iss"),
        ({"aud": None}, "missing claim aud"),
        ({"exp": None}, "missing claim exp"),
        ({"iat": None}, "missing claim iat"),
        ({"nbf": None}, "missing claim nbf"),
        ({"sub": None}, "missing claim sub"),
        ({"jti": None}, "missing claim jti"),
        ({"exp": "9999999999"}, "exp is not a number"),
        ({"exp": True}, "exp is not a number"),
        ({"nbf": False}, "nbf is not a number"),
        ({"iat": "0"}, "iat is not a number"),
        ({"exp": float("inf")}, "exp is not a number"),
        ({"exp": 10**400}, "exp is not a number"),
        ({"iat": float("nan")}, "iat is not a number"),
        ({"sub": 42}, "malformed token"),
        ({"sub": ""}, "empty sub or jti"),
        ({"scope": ["notes:read"]}, "scope is not a string"),
        ({"scope": "notes:read\tadmin"}, "malformed scope"),
    ],
)
def test_claims_of_the_wrong_value_or_type_are_rejected(
    service: TokenService, clock: Clock, overrides: dict[str, Any], expected: str
) -> None:
    payload = claims(clock, iss="https://id.example", aud="notes")
    for name, value in overrides.items():
        payload.pop(name, None)
        if value is not None:
            payload[name] = value
    assert reason(service, forge(service, payload)) == expected


def test_audience_is_rejected_when_none_is_configured(clock: Clock) -> None:
    service = TokenService(auth_settings(), clock=clock)
    assert reason(service, forge(service, claims(clock, aud="notes"))) == "wrong audience"


def test_expiry_honours_the_leeway_and_no_more(service: TokenService, clock: Clock) -> None:
    token = service.issue_access_token("alice", ttl=60)
    clock.advance(60 + 29)
    assert service.decode(token)["sub"] == "alice"
    clock.advance(1)
    assert reason(service, token) == "token expired"


def test_token_not_yet_valid_or_issued_in_the_future_is_rejected(
    service: TokenService, clock: Clock
) -> None:
    base = claims(clock, iss="https://id.example", aud="notes")
    later = int(clock()) + 31
    assert reason(service, forge(service, {**base, "nbf": later})) == "token not yet valid"
    assert reason(service, forge(service, {**base, "iat": later})) == "token issued in the future"
    within = int(clock()) + 30
    assert service.decode(forge(service, {**base, "nbf": within, "iat": within}))["sub"] == "alice"


@pytest.mark.parametrize(
    "kid",
    ["unknown", "../../etc/passwd", "/etc/passwd", "..", "a/b", ".hidden", "x" * 200, "", 7, None],
)
def test_unknown_or_path_like_kid_is_rejected(
    service: TokenService, clock: Clock, kid: Any
) -> None:
    header: dict[str, Any] = {"alg": "HS256", "typ": "at+jwt"}
    if kid is not None:
        header["kid"] = kid
    token = hs256(header, claims(clock, iss="https://id.example", aud="notes"), SECRET.encode())
    assert reason(service, token) in {"unknown key", "malformed token"}


def test_a_one_megabyte_token_is_rejected_before_parsing(service: TokenService) -> None:
    token = "a" * (1024 * 1024 - 2) + ".b.c"
    assert reason(service, token) == "token too large"
    # Large but under the cap is parsed (and fails on its content, not its size).
    assert reason(service, "e30." + "a" * 4000 + ".c") == "unknown key"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "a.b.c.d",
        "a.b.",
        "é.é.é",
        "a b.c.d",
        "",
        "...",
        "e30.e30",
        "W10.e30.c2ln",  # header is a JSON array
        "bm90IGpzb24.e30.c2ln",  # header is not JSON
        "_w.e30.c2ln",  # header is not UTF-8
        "a.e30.c2ln",  # header of impossible base64 length
        b64(b"[" * 100_000)[:4000] + ".e30.c2ln",  # deeply nested header
    ],
)
def test_malformed_tokens_are_rejected(service: TokenService, token: str) -> None:
    assert reason(service, token) == "malformed token"


def test_refresh_and_access_tokens_are_not_interchangeable(clock: Clock) -> None:
    service = TokenService(auth_settings(refresh_tokens=True), clock=clock)
    pair = service.issue_tokens("alice")
    assert pair.refresh_token is not None
    assert reason(service, pair.refresh_token) == "not an access token"
    assert reason(service, pair.access_token, kind="refresh") == "not a refresh token"
    assert service.decode(pair.refresh_token, kind="refresh")["sub"] == "alice"


def test_missing_typ_and_critical_headers_are_rejected(service: TokenService, clock: Clock) -> None:
    payload = claims(clock, iss="https://id.example", aud="notes")
    untyped = jwt.encode(
        payload, SECRET, algorithm="HS256", headers={"kid": service.keys.signing.kid}
    )
    assert reason(service, untyped) == "not an access token"
    critical = forge(service, payload, crit=["exp"])
    assert reason(service, critical) in {"unsupported token header", "malformed token"}


def test_a_token_signed_with_another_secret_has_a_bad_signature(
    service: TokenService, clock: Clock
) -> None:
    header = {"alg": "HS256", "kid": service.keys.signing.kid, "typ": "at+jwt"}
    payload = claims(clock, iss="https://id.example", aud="notes")
    assert reason(service, hs256(header, payload, OTHER_SECRET.encode())) == "bad signature"


def test_scope_with_extra_spaces_parses_to_the_same_scopes(
    service: TokenService, clock: Clock
) -> None:
    payload = claims(
        clock, iss="https://id.example", aud="notes", scope="  notes:read   notes:write "
    )
    principal = Principal.from_claims(service.decode(forge(service, payload)))
    assert principal.scopes == {"notes:read", "notes:write"}


def test_issuing_refuses_reserved_claims_bad_scopes_and_empty_subjects(
    service: TokenService,
) -> None:
    with pytest.raises(ValueError, match="exp"):
        service.issue_access_token("alice", claims={"exp": 1})
    with pytest.raises(ValueError, match="invalid scope"):
        service.issue_access_token("alice", scopes=['bad"scope'])
    with pytest.raises(ValueError, match="subject"):
        service.issue_access_token("")


ALGORITHMS = ["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"]


def configured(algorithm: str, keypairs: dict[str, tuple[str, str]], **extra: Any) -> TokenService:
    if algorithm.startswith("HS"):
        return TokenService(
            auth_settings(algorithm=algorithm, jwt_secret=SecretStr(SECRET + SECRET), **extra)
        )
    private_pem, _ = keypairs[algorithm]
    return TokenService(
        auth_settings(algorithm=algorithm, private_key=SecretStr(private_pem), **extra)
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_supported_algorithm_round_trips(
    algorithm: str, keypairs: dict[str, tuple[str, str]]
) -> None:
    service = configured(algorithm, keypairs)
    token = service.issue_access_token("alice", scopes=["a"])
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    assert service.decode(token)["scope"] == "a"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_jwks_publishes_public_keys_by_kid_only(
    algorithm: str, keypairs: dict[str, tuple[str, str]]
) -> None:
    service = configured(algorithm, keypairs)
    (jwk,) = service.jwks()["keys"]
    assert jwk["kid"] == service.keys.signing.kid
    assert jwk["alg"] == algorithm
    assert jwk["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk), "private members leaked"
    # The published key verifies the service's tokens.
    token = service.issue_access_token("alice")
    public = jwt.PyJWK(jwk).key
    assert jwt.decode(token, public, algorithms=[algorithm])["sub"] == "alice"


def test_hmac_keys_are_never_published(service: TokenService) -> None:
    assert service.jwks() == {"keys": []}


def test_rotation_add_key_switch_signer_retire_key(clock: Clock) -> None:
    old = TokenService(auth_settings(kid="2025-01"), clock=clock)
    old_token = old.issue_access_token("alice")
    # Step 1 and 2: the new signer still verifies tokens of the old key, by kid.
    new = TokenService(
        auth_settings(
            kid="2025-06",
            jwt_secret=SecretStr(OTHER_SECRET),
            verification_keys={"2025-01": SecretStr(SECRET)},
        ),
        clock=clock,
    )
    assert new.decode(old_token)["sub"] == "alice"
    new_token = new.issue_access_token("bob")
    assert jwt.get_unverified_header(new_token)["kid"] == "2025-06"
    # A token claiming the new kid but signed with the old key is not tried against the old key.
    header = {"alg": "HS256", "kid": "2025-06", "typ": "at+jwt"}
    assert reason(new, hs256(header, claims(clock), SECRET.encode())) == "bad signature"
    # Step 3: once the old key is retired, its tokens are rejected.
    retired = TokenService(
        auth_settings(kid="2025-06", jwt_secret=SecretStr(OTHER_SECRET)), clock=clock
    )
    assert reason(retired, old_token) == "unknown key"
    assert retired.decode(new_token)["sub"] == "bob"


def test_asymmetric_rotation_publishes_both_keys(
    keypairs: dict[str, tuple[str, str]], clock: Clock
) -> None:
    old_private, old_public = keypairs["ES256"]
    new_private, _ = keypairs["ES256-2"]
    old = TokenService(
        auth_settings(algorithm="ES256", private_key=SecretStr(old_private), kid="k1"),
        clock=clock,
    )
    new = TokenService(
        auth_settings(
            algorithm="ES256",
            private_key=SecretStr(new_private),
            kid="k2",
            verification_keys={"k1": SecretStr(old_public)},
        ),
        clock=clock,
    )
    assert new.decode(old.issue_access_token("alice"))["sub"] == "alice"
    assert sorted(k["kid"] for k in new.jwks()["keys"]) == ["k1", "k2"]


def test_default_kid_is_the_rfc7638_thumbprint(keypairs: dict[str, tuple[str, str]]) -> None:
    service = configured("ES256", keypairs)
    (jwk,) = service.jwks()["keys"]
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(required, separators=(",", ":"), sort_keys=True).encode())
    assert service.keys.signing.kid == b64(digest.digest())


def test_unconfigured_keys_are_random_per_process_and_shared_within_it() -> None:
    one = TokenService()
    two = TokenService()
    assert two.decode(one.issue_access_token("alice"))["sub"] == "alice"
    assert len(one.keys.signing.signing) >= 32


def test_private_key_file_is_read(keypairs: dict[str, tuple[str, str]], tmp_path: Path) -> None:
    private_pem, public_pem = keypairs["EdDSA"]
    key_file = tmp_path / "signing.pem"
    key_file.write_text(private_pem)
    public_file = tmp_path / "old.pem"
    public_file.write_text(keypairs["EdDSA-2"][1])
    service = TokenService(
        auth_settings(
            algorithm="EdDSA",
            private_key_file=key_file,
            verification_keys={"old": SecretStr(str(public_file))},
        )
    )
    assert service.decode(service.issue_access_token("alice"))["sub"] == "alice"
    assert len(service.jwks()["keys"]) == 2
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"algorithm": "HS512", "jwt_secret": SecretStr(SECRET)},
            "CHASSIS_AUTH__JWT_SECRET is 48 bytes; HS512 needs at least 64",
        ),
        ({"jwt_secret": SecretStr("short")}, "CHASSIS_AUTH__JWT_SECRET is 5 bytes"),
        ({"kid": "../keys"}, "CHASSIS_AUTH__KID='../keys' is not a valid key id"),
        (
            {"verification_keys": {"old": SecretStr("short")}},
            "CHASSIS_AUTH__VERIFICATION_KEYS['old'] is 5 bytes",
        ),
        ({"verification_keys": {"a/b": SecretStr(OTHER_SECRET)}}, "is not a valid key id"),
        (
            {"kid": "k", "verification_keys": {"k": SecretStr(OTHER_SECRET)}},
            "reuses the signing key's id",
        ),
        (
            {"algorithm": "ES256", "private_key": SecretStr("not a key")},
            "CHASSIS_AUTH__PRIVATE_KEY is not an unencrypted PEM private key",
        ),
        (
            {"algorithm": "ES256", "private_key_file": Path("/nonexistent/key.pem")},
            "CHASSIS_AUTH__PRIVATE_KEY_FILE is neither PEM text nor a readable file",
        ),
    ],
)
def test_unusable_key_configuration_fails_naming_the_variable(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=None) as info:
        TokenService(auth_settings(**overrides))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("algorithm", "wrong"), [("ES256", "RS256"), ("RS256", "EdDSA"), ("EdDSA", "ES256")]
)
def test_a_key_of_another_family_member_is_refused(
    algorithm: str, wrong: str, keypairs: dict[str, tuple[str, str]]
) -> None:
    with pytest.raises(ConfigurationError, match="needs"):
        TokenService(auth_settings(algorithm=algorithm, private_key=SecretStr(keypairs[wrong][0])))
    own_private = keypairs[algorithm][0]
    with pytest.raises(ConfigurationError, match="needs"):
        TokenService(
            auth_settings(
                algorithm=algorithm,
                private_key=SecretStr(own_private),
                verification_keys={"old": SecretStr(keypairs[wrong][1])},
            )
        )


def test_an_hmac_secret_is_not_accepted_as_a_public_key(
    keypairs: dict[str, tuple[str, str]],
) -> None:
    with pytest.raises(ConfigurationError):
        TokenService(
            auth_settings(
                algorithm="RS256",
                private_key=SecretStr(keypairs["RS256"][0]),
                verification_keys={"old": SecretStr(SECRET)},
            )
        )
