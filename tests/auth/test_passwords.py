"""PasswordHasher: argon2id, never raising on bad input, rehash, length and concurrency caps."""

from __future__ import annotations

import threading

import anyio
import argon2
import pytest

from fastapi_chassis import PasswordHasher
from fastapi_chassis.auth import PasswordTooLong
from tests.auth.conftest import auth_settings

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(**CHEAP)


def test_hash_is_argon2id_with_the_configured_parameters(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.hash("correct horse") != stored, "each hash has its own salt"


def test_default_parameters_are_the_rfc9106_low_memory_profile() -> None:
    profile = argon2.profiles.RFC_9106_LOW_MEMORY
    settings_hasher = PasswordHasher.from_settings(
        auth_settings(
            argon2_time_cost=profile.time_cost,
            argon2_memory_cost=profile.memory_cost,
            argon2_parallelism=profile.parallelism,
        )
    )
    default = PasswordHasher()
    stored = default.hash("pw")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not settings_hasher.needs_rehash(stored)
    assert default.verify(stored, "pw")


def test_verify_matches_only_the_right_password(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse")
    assert hasher.verify(stored, "correct horse") is True
    assert hasher.verify(stored, "correct horsE") is False
    assert hasher.verify(stored, "") is False


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=8,t=1,p=1$broken",
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$",
        "$2b$12$KIXQJ1mXOsh2Zm3ZzW1NnuN0pXaA9vJkQ0V3M6Qv6aVd6H8z8J6yS",
        "$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    ],
)
def test_wrong_password_against_a_malformed_stored_hash_is_false_not_an_error(
    hasher: PasswordHasher, stored: str
) -> None:
    assert hasher.verify(stored, "wrong password") is False
    assert hasher.verify_and_update(stored, "wrong password") == (False, None)
    assert hasher.needs_rehash(stored) is True


def test_unknown_user_runs_a_dummy_verify_and_is_false(hasher: PasswordHasher) -> None:
    assert hasher.verify(None, "anything") is False
    assert hasher.verify_and_update(None, "anything") == (False, None)


def test_needs_rehash_when_parameters_changed(hasher: PasswordHasher) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    stored = hasher.hash("pw")
    assert hasher.needs_rehash(stored) is False
    assert stronger.needs_rehash(stored) is True


def test_verify_and_update_rehashes_on_login_with_new_parameters(hasher: PasswordHasher) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    old = hasher.hash("pw")
    ok, new = stronger.verify_and_update(old, "pw")
    assert ok is True
    assert new is not None
    assert new.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    assert stronger.verify(new, "pw")
    assert stronger.verify_and_update(new, "pw") == (True, None)
    assert stronger.verify_and_update(old, "nope") == (False, None)


def test_password_length_is_capped_in_utf8_bytes_before_hashing(hasher: PasswordHasher) -> None:
    limit = hasher.max_password_bytes
    assert hasher.verify(hasher.hash("é" * (limit // 2)), "é" * (limit // 2))
    too_long = "é" * (limit // 2 + 1)
    for call in (
        hasher.hash,
        lambda p: hasher.verify("$argon2id$x", p),
        lambda p: hasher.verify(None, p),
    ):
        with pytest.raises(PasswordTooLong) as info:
            call(too_long)
        assert info.value.status_code == 422
        assert info.value.error_code == "password_too_long"


@pytest.mark.anyio
async def test_async_variants_give_the_same_answers(hasher: PasswordHasher) -> None:
    stored = await hasher.ahash("pw")
    assert await hasher.averify(stored, "pw") is True
    assert await hasher.averify(stored, "no") is False
    assert await hasher.averify(None, "pw") is False
    assert await hasher.averify("garbage", "pw") is False
    assert await hasher.averify_and_update(stored, "pw") == (True, None)
    with pytest.raises(PasswordTooLong):
        await hasher.ahash("x" * 2000)


class GatedHasher(PasswordHasher):
    """Verification waits at a gate, so a test can see how many run at once."""

    def __init__(self, **kwargs: int) -> None:
        super().__init__(**CHEAP, **kwargs)
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.entered = 0

    def verify(self, stored_hash: str | None, password: str) -> bool:
        with self.lock:
            self.running += 1
            self.entered += 1
            self.peak = max(self.peak, self.running)
        try:
            if not self.gate.wait(timeout=30):
                raise AssertionError("gate never opened")
            return super().verify(stored_hash, password)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.anyio
async def test_async_hashing_is_capped_and_leaves_the_event_loop_free() -> None:
    hasher = GatedHasher(max_concurrency=3)
    stored = hasher.hash("pw")
    results: list[bool] = []

    async def login() -> None:
        results.append(await hasher.averify(stored, "pw"))

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(login)
        with anyio.fail_after(10):
            # Worker threads update the counter; polling it is the simplest cross-thread wait.
            while hasher.entered < 3:  # noqa: ASYNC110
                await anyio.sleep(0.005)
        # The loop still runs other work while three hashes block their threads.
        await anyio.sleep(0.02)
        assert hasher.running == 3
        assert hasher.entered == 3
        assert results == []
        hasher.gate.set()
    assert results == [True] * 10
    assert hasher.peak == 3
