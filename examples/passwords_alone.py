"""PasswordHasher on its own: hash, verify, rehash on login."""

from __future__ import annotations

from fastapi_chassis import PasswordHasher

hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile: 3 passes, 64 MiB, 4 lanes

stored = hasher.hash("correct horse battery staple")
assert hasher.verify(stored, "correct horse battery staple")
assert not hasher.verify(stored, "Tr0ub4dor&3")
assert not hasher.verify("corrupt $argon2 value", "anything")  # False, never an exception
assert not hasher.verify(None, "anything")  # unknown user: a dummy verify, then False

# Raise the cost later; users are upgraded as they log in.
stronger = PasswordHasher(time_cost=4, memory_cost=131072, parallelism=4)
ok, new_hash = stronger.verify_and_update(stored, "correct horse battery staple")
assert ok
assert new_hash is not None
assert not stronger.needs_rehash(new_hash)
