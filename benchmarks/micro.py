"""Micro-benchmarks users ask about: JWT verifications per second (pyjwt, HS256 and ES256).

    python -m benchmarks.micro

These time pyjwt itself, the floor under any auth layer; the chassis' own token service adds
its claim checks (and a revocation lookup) on top.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from benchmarks.apps import JWT_SECRET, make_token


def _per_second(fn: Any, n: int) -> float:
    for _ in range(max(10, n // 10)):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def jwt_verify(quick: bool = False) -> dict[str, float]:
    """Verifications per second for HS256 and ES256 tokens carrying the usual claims."""
    hs_token = make_token()
    claims = jwt.decode(hs_token, JWT_SECRET, algorithms=["HS256"])
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    es_token = jwt.encode(claims, private, algorithm="ES256")
    n = 2000 if quick else 20000
    return {
        "HS256": _per_second(lambda: jwt.decode(hs_token, JWT_SECRET, algorithms=["HS256"]), n),
        "ES256": _per_second(lambda: jwt.decode(es_token, public, algorithms=["ES256"]), n // 4),
    }


def main() -> None:
    import sys

    print(json.dumps({"jwt_verify_per_second": jwt_verify("--quick" in sys.argv)}))


if __name__ == "__main__":
    main()
