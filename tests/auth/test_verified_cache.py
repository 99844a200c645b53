"""The verified-token cache: a repeated access token skips the signature check, nothing else.

Every test here holds the cache to one rule: with it, `decode()` / `verify()` answer exactly as
a service without it would (same claims, same error), only faster for byte-identical tokens.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from fastapi_chassis import (
    ChassisSettings,
    CurrentPrincipal,
    InvalidToken,
    Tokens,
    TokenService,
    build_app,
    get_token_service,
)
from fastapi_chassis.auth._jws import verify_signature
from fastapi_chassis.auth._keys import Key, KeySet
from tests.auth.conftest import OTHER_SECRET, Clock, auth_settings
from tests.auth.test_tokens import claims, forge


class Counting:
    """A signature check that counts full verifications."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, key: Key, signing_input: bytes, signature: bytes) -> bool:
        self.calls += 1
        return verify_signature(key, signing_input, signature)


def service(clock: Clock, **overrides: Any) -> tuple[TokenService, Counting]:
    tokens = TokenService(auth_settings(**overrides), clock=clock)
    counting = Counting()
    tokens._verify_signature = counting
    return tokens, counting


def reason(tokens: TokenService, token: Any) -> str:
    with pytest.raises(InvalidToken) as info:
        tokens.decode(token)
    return str(info.value.detail)


def test_a_repeated_token_is_verified_once(clock: Clock) -> None:
    tokens, counting = service(clock)
    token = tokens.issue_access_token("alice", scopes=["read"])
    first = tokens.decode(token)
    second = tokens.decode(token)
    assert first == second
    assert first["sub"] == "alice"
    assert first["scope"] == "read"
    assert counting.calls == 1
    assert len(tokens.verified) == 1


def test_the_cache_can_be_turned_off(clock: Clock) -> None:
    tokens, counting = service(clock, verified_token_cache=0)
    token = tokens.issue_access_token("alice")
    for _ in range(3):
        assert tokens.decode(token)["sub"] == "alice"
    assert counting.calls == 3
    assert len(tokens.verified) == 0


def test_an_expired_cached_token_is_refused_and_forgotten(clock: Clock) -> None:
    tokens, _ = service(clock, access_token_ttl=60, leeway=5)
    token = tokens.issue_access_token("alice")
    tokens.decode(token)
    clock.advance(64)  # inside the leeway: still good, from the cache
    assert tokens.decode(token)["sub"] == "alice"
    clock.advance(1)  # exp + leeway reached
    assert reason(tokens, token) == "token expired"
    assert len(tokens.verified) == 0


def test_a_cached_token_is_refused_before_its_nbf(clock: Clock) -> None:
    tokens, _ = service(clock, leeway=0)
    token = tokens.issue_access_token("alice")
    tokens.decode(token)
    clock.advance(-1)  # the clock stepped back: nbf and iat are in the future again
    assert reason(tokens, token) == "token not yet valid"


def test_a_cached_token_whose_nbf_is_after_its_iat_is_refused_before_nbf(clock: Clock) -> None:
    tokens, _ = service(clock, leeway=0)
    now = int(clock())
    token = forge(tokens, claims(clock, iat=now - 100, nbf=now, jti="late-start"))
    assert tokens.decode(token)["jti"] == "late-start"
    clock.advance(-50)  # iat is still in the past, nbf is not
    assert reason(tokens, token) == "token not yet valid"


def test_a_retired_key_stops_its_cached_tokens_at_once(clock: Clock) -> None:
    old = TokenService(auth_settings(kid="2025-01"), clock=clock)
    token = old.issue_access_token("alice")
    rotating = TokenService(
        auth_settings(
            kid="2025-06",
            jwt_secret=SecretStr(OTHER_SECRET),
            verification_keys={"2025-01": SecretStr(auth_settings().jwt_secret.get_secret_value())},
        ),
        clock=clock,
    )
    assert rotating.decode(token)["sub"] == "alice"
    assert len(rotating.verified) == 1
    # The old key is dropped from the live key set (a reload): its token is unknown at once.
    keys = rotating.keys
    rotating.keys = KeySet(signing=keys.signing, verifying={keys.signing.kid: keys.signing})
    assert reason(rotating, token) == "unknown key"
    # A key replaced under the same kid is not the key that verified the token either.
    fresh = TokenService(auth_settings(kid="2025-01"), clock=clock)
    token = fresh.issue_access_token("bob")
    fresh.decode(token)
    other = TokenService(
        auth_settings(kid="2025-01", jwt_secret=SecretStr(OTHER_SECRET)), clock=clock
    )
    fresh.keys = other.keys
    assert reason(fresh, token) == "bad signature"


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"audience": "other-api"}, "wrong audience"),
        ({"issuer": "https://other.example"}, "wrong issuer"),
        ({"max_token_bytes": 256}, "token too large"),
    ],
)
def test_a_cached_token_meets_the_settings_in_force_not_those_it_was_cached_under(
    clock: Clock, change: dict[str, Any], refusal: str
) -> None:
    tokens, _ = service(clock, issuer="https://auth.example", audience="notes")
    token = tokens.issue_access_token("alice", claims={"pad": "x" * 300})
    assert tokens.decode(token)["sub"] == "alice"
    tokens.settings = tokens.settings.model_copy(update=change)
    assert reason(tokens, token) == refusal


def test_claims_nested_too_deep_to_copy_are_verified_every_time_instead(clock: Clock) -> None:
    tokens, counting = service(clock)
    deep: Any = "bottom"
    for _ in range(600):  # json encodes it; copy.deepcopy gives up at about 450 levels
        deep = [deep]
    token = tokens.issue_access_token("alice", claims={"deep": deep})
    for _ in range(2):
        assert tokens.decode(token)["sub"] == "alice"
    assert counting.calls == 2
    assert len(tokens.verified) == 0


def test_str_subclasses_never_use_the_cache(clock: Clock) -> None:
    tokens, _ = service(clock)
    token = tokens.issue_access_token("alice")
    tokens.decode(token)

    class Liar(str):
        """Claims to equal (and hash like) the cached token."""

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return hash(token)

    class NoHash(str):
        __hash__ = None  # type: ignore[assignment]

    assert reason(tokens, Liar("not.a.token")) == "malformed token"
    assert tokens.decode(NoHash(token))["sub"] == "alice"


@pytest.mark.anyio
async def test_revocation_is_checked_on_every_cached_hit(clock: Clock) -> None:
    tokens, counting = service(clock)
    token = tokens.issue_access_token("alice")
    claims = await tokens.verify(token)
    assert (await tokens.verify(token))["jti"] == claims["jti"]
    await tokens.revoke(claims["jti"], expires_at=claims["exp"])
    with pytest.raises(InvalidToken, match="token revoked"):
        await tokens.verify(token)
    assert counting.calls == 1  # the signature was checked once; revocation three times


def test_callers_cannot_change_what_the_cache_holds(clock: Clock) -> None:
    tokens, _ = service(clock)
    token = tokens.issue_access_token(
        "alice", claims={"roles": ["reader"], "org": {"id": 7}, "name": "Alice"}
    )
    first = tokens.decode(token)
    first["sub"] = "mallory"
    first["roles"].append("admin")
    first["org"]["id"] = 0
    first["name"] = "x"
    again = tokens.decode(token)
    assert again["sub"] == "alice"
    assert again["roles"] == ["reader"]
    assert again["org"] == {"id": 7}
    assert again["name"] == "Alice"
    again["roles"].append("admin")
    assert tokens.decode(token)["roles"] == ["reader"]


def test_refresh_tokens_are_never_cached(clock: Clock) -> None:
    tokens, counting = service(clock, refresh_tokens=True)
    pair = tokens.issue_tokens("alice")
    assert pair.refresh_token is not None
    tokens.decode(pair.refresh_token, kind="refresh")
    tokens.decode(pair.refresh_token, kind="refresh")
    assert counting.calls == 2
    assert len(tokens.verified) == 0
    # A cached access token is still not a refresh token.
    tokens.decode(pair.access_token)
    with pytest.raises(InvalidToken, match="not a refresh token"):
        tokens.decode(pair.access_token, kind="refresh")


def test_the_cache_holds_at_most_its_limit_oldest_out_first(clock: Clock) -> None:
    tokens, counting = service(clock, verified_token_cache=2)
    issued = [tokens.issue_access_token(f"user-{i}") for i in range(3)]
    for token in issued:
        tokens.decode(token)
    assert len(tokens.verified) == 2
    tokens.decode(issued[2])
    tokens.decode(issued[1])
    assert counting.calls == 3  # the two newest were served from the cache
    tokens.decode(issued[0])  # the oldest was evicted: verified again
    assert counting.calls == 4
    assert len(tokens.verified) == 2


def test_failed_tokens_are_not_remembered(clock: Clock) -> None:
    tokens, counting = service(clock)
    token = tokens.issue_access_token("alice")
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for _ in range(2):
        assert reason(tokens, forged) == "bad signature"
    assert counting.calls == 2
    assert len(tokens.verified) == 0


def test_non_text_tokens_still_fail_cleanly(clock: Clock) -> None:
    tokens, _ = service(clock)
    for bad in (None, 12, b"abc", ["a.b.c"], {"a": 1}):
        assert reason(tokens, bad) == "malformed token"


_TEXT = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=", max_size=3
)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), replacement=_TEXT, delete=st.integers(0, 2))
def test_a_token_differing_from_a_cached_one_gets_the_uncached_answer(
    position: int, replacement: str, delete: int
) -> None:
    clock = Clock()
    cached, _ = service(clock)
    uncached, _ = service(clock, verified_token_cache=0)
    token = cached.issue_access_token("alice", scopes=["read"])
    cached.decode(token)
    at = position % (len(token) + 1)
    variant = token[:at] + replacement + token[at + delete :]

    def outcome(tokens: TokenService) -> Any:
        try:
            return tokens.decode(variant)
        except InvalidToken as exc:
            return ("refused", exc.detail)

    # Some variants still verify (base64 has spare bits); then both must agree on the claims.
    assert outcome(cached) == outcome(uncached)
    assert outcome(cached) == outcome(uncached)  # and again, once it may have been cached


def test_threads_share_the_cache_without_errors(clock: Clock) -> None:
    tokens, _ = service(clock, verified_token_cache=8)
    issued = [tokens.issue_access_token(f"user-{i}") for i in range(32)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for round_ in range(50):
                token = issued[(offset + round_) % len(issued)]
                assert tokens.decode(token)["sub"] == f"user-{(offset + round_) % len(issued)}"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(tokens.verified) <= 8


def test_the_setting_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHASSIS_AUTH__VERIFIED_TOKEN_CACHE", "0")
    assert ChassisSettings().auth.verified_token_cache == 0
    monkeypatch.setenv("CHASSIS_AUTH__VERIFIED_TOKEN_CACHE", "-1")
    with pytest.raises(ValueError, match="verified_token_cache"):
        ChassisSettings()


def test_through_the_app_a_cached_token_is_still_checked_for_revocation() -> None:
    app: FastAPI = build_app(ChassisSettings(auth=auth_settings(verified_token_cache=16)))

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"sub": principal.subject}

    @app.post("/logout", status_code=204)
    async def logout(principal: CurrentPrincipal, tokens: Tokens) -> None:
        await tokens.revoke_claims(principal.claims)

    with TestClient(app) as client:
        tokens = get_token_service(app)
        assert tokens.verified.limit == 16
        headers = {"Authorization": f"Bearer {tokens.issue_access_token('alice')}"}
        for _ in range(3):
            assert client.get("/me", headers=headers).json() == {"sub": "alice"}
        assert len(tokens.verified) == 1
        assert client.post("/logout", headers=headers).status_code == 204
        refused = client.get("/me", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert "token revoked" in refused.headers["www-authenticate"]
