"""`PasswordHasher`: argon2id hashing that never blocks the event loop nor crashes on bad input.

Each hash uses `memory_cost` KiB (64 MiB with the RFC 9106 low-memory default) for its
duration, so the async methods run in worker threads behind a per-process cap: a burst of
logins queues instead of exhausting memory or starving the event loop.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import argon2
from anyio.lowlevel import RunVar
from argon2.exceptions import InvalidHashError, VerificationError

from fastapi_chassis.errors import UnprocessableEntity

if TYPE_CHECKING:
    from fastapi_chassis.settings import AuthSettings

__all__ = ["PasswordHasher", "PasswordTooLong"]


class PasswordTooLong(UnprocessableEntity):
    """The password exceeds the configured byte limit (checked before any hashing)."""

    code = "password_too_long"
    title = "Password too long"


class PasswordHasher:
    """argon2id password hashing with a length cap and a concurrency cap.

    Args:
        time_cost: argon2id passes (RFC 9106 low-memory profile: 3).
        memory_cost: argon2id memory per hash, KiB (profile: 65536, i.e. 64 MiB).
        parallelism: argon2id lanes (profile: 4).
        max_password_bytes: longer passwords raise `PasswordTooLong` (422) before hashing.
        max_concurrency: hashes the async methods run at once (per event loop).
    """

    def __init__(
        self,
        *,
        time_cost: int = argon2.profiles.RFC_9106_LOW_MEMORY.time_cost,
        memory_cost: int = argon2.profiles.RFC_9106_LOW_MEMORY.memory_cost,
        parallelism: int = argon2.profiles.RFC_9106_LOW_MEMORY.parallelism,
        max_password_bytes: int = 1024,
        max_concurrency: int = 4,
    ) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self.max_password_bytes = max_password_bytes
        self.max_concurrency = max_concurrency
        self._limiter: RunVar[anyio.CapacityLimiter] = RunVar(f"chassis_hasher_{id(self)}")
        self._dummy_hash: str | None = None

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> PasswordHasher:
        """A hasher with the `argon2_*`, `max_password_bytes` and concurrency settings."""
        return cls(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
            max_password_bytes=settings.max_password_bytes,
            max_concurrency=settings.max_concurrent_hashes,
        )

    def check_length(self, password: str) -> None:
        """Raise `PasswordTooLong` (422) when `password` exceeds the byte limit."""
        size = len(password.encode("utf-8", "surrogatepass"))
        if size > self.max_password_bytes:
            raise PasswordTooLong(
                f"passwords are limited to {self.max_password_bytes} bytes (UTF-8)",
                extra={"max_bytes": self.max_password_bytes},
            )

    # -- synchronous (blocking) --------------------------------------------------------

    def hash(self, password: str) -> str:
        """The argon2id hash of `password` (a fresh random salt each call). Blocking."""
        self.check_length(password)
        return self._argon2.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches `stored_hash`. Blocking.

        Never raises for a wrong password or a malformed stored hash (both give False).
        With `stored_hash=None` (unknown user) it verifies against a dummy hash, so the
        answer takes as long as for a real user, and returns False.

        Raises:
            PasswordTooLong: before any hashing.
        """
        self.check_length(password)
        # Made on first use by any caller, so no single path pays for it alone.
        dummy = self._dummy()
        if stored_hash is None:
            self._verify(dummy, password)
            return False
        return self._verify(stored_hash, password)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, password)
        # InvalidHashError is not a VerificationError: a corrupt stored hash must not be a 500.
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether `stored_hash` was made with other parameters (or is malformed)."""
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def verify_and_update(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        """`(matches, new_hash)`: `new_hash` is set when the password matched and the stored
        hash uses outdated parameters (store it: rehash on login). Blocking."""
        matched = self.verify(stored_hash, password)
        if not matched or stored_hash is None:
            return False, None
        if self.needs_rehash(stored_hash):
            return True, self._argon2.hash(password)
        return True, None

    # -- asynchronous (worker threads, capped) -----------------------------------------

    def _current_limiter(self) -> anyio.CapacityLimiter:
        try:
            return self._limiter.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self.max_concurrency)
            self._limiter.set(limiter)
            return limiter

    async def ahash(self, password: str) -> str:
        """`hash()` in a worker thread, at most `max_concurrency` at once."""
        self.check_length(password)
        return await anyio.to_thread.run_sync(
            self._argon2.hash, password, limiter=self._current_limiter()
        )

    async def averify(self, stored_hash: str | None, password: str) -> bool:
        """`verify()` in a worker thread, at most `max_concurrency` at once."""
        self.check_length(password)
        return await anyio.to_thread.run_sync(
            self.verify, stored_hash, password, limiter=self._current_limiter()
        )

    async def averify_and_update(
        self, stored_hash: str | None, password: str
    ) -> tuple[bool, str | None]:
        """`verify_and_update()` in a worker thread, at most `max_concurrency` at once."""
        self.check_length(password)
        return await anyio.to_thread.run_sync(
            self.verify_and_update, stored_hash, password, limiter=self._current_limiter()
        )
