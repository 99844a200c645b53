"""Properties: issued tokens verify to their claims; any altered byte fails verification."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from fastapi_chassis import InvalidToken, Principal, TokenService
from fastapi_chassis.auth.tokens import RESERVED_CLAIMS
from tests.auth.conftest import auth_settings

SCOPE_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\')
scopes = st.lists(st.text(SCOPE_CHARS, min_size=1, max_size=12), max_size=5, unique=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
extra_claims = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda name: name not in RESERVED_CLAIMS),
    json_values,
    max_size=4,
)
subjects = st.text(min_size=1, max_size=40)

HS = TokenService(auth_settings(issuer="https://id.example", audience="api"))


def es_service() -> TokenService:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return TokenService(auth_settings(algorithm="ES256", private_key=SecretStr(pem.decode())))


ES = es_service()


@pytest.mark.parametrize("service", [HS, ES], ids=["HS256", "ES256"])
@settings(max_examples=60, deadline=None)
@given(subject=subjects, granted=scopes, extra=extra_claims)
def test_any_issued_token_verifies_to_the_same_claims(
    service: TokenService, subject: str, granted: list[str], extra: dict[str, Any]
) -> None:
    token = service.issue_access_token(subject, scopes=granted, claims=extra)
    claims = service.decode(token)
    assert {k: claims[k] for k in extra} == extra
    principal = Principal.from_claims(claims)
    assert principal.subject == subject
    assert principal.scopes == set(granted)


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("service", [HS, ES], ids=["HS256", "ES256"])
@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    part=st.sampled_from([0, 1, 2]),
    subject=subjects,
    granted=scopes,
)
def test_any_change_to_header_payload_or_signature_bytes_fails(
    service: TokenService, data: st.DataObject, part: int, subject: str, granted: list[str]
) -> None:
    token = service.issue_access_token(subject, scopes=granted)
    segments = token.split(".")
    # Mutate the decoded bytes and re-encode: flipping the last base64url character can
    # leave the decoded bytes unchanged, which would not be a change at all.
    raw = bytearray(b64decode(segments[part]))
    position = data.draw(st.integers(0, len(raw) - 1), label="position")
    flip = data.draw(st.integers(1, 255), label="xor")
    raw[position] ^= flip
    segments[part] = b64encode(bytes(raw))
    tampered = ".".join(segments)
    assert tampered != token
    with pytest.raises(InvalidToken):
        service.decode(tampered)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_changed_lengths_fail_too(data: st.DataObject) -> None:
    token = HS.issue_access_token("alice")
    segments = token.split(".")
    part = data.draw(st.sampled_from([0, 1, 2]))
    raw = b64decode(segments[part])
    cut = data.draw(st.integers(0, len(raw) - 1))
    extra = data.draw(st.binary(min_size=0, max_size=3))
    changed = raw[:cut] + extra + raw[cut + 1 :]
    assume(changed != raw)
    segments[part] = b64encode(changed)
    with pytest.raises(InvalidToken):
        HS.decode(".".join(segments))
