"""JWT verifications per second through `TokenService`, with and without the revocation check.

Run: `PYTHONPATH=src python -m benchmarks.jwt_verify [--seconds 2]`. The revocation check uses
the in-memory store (one dict lookup); with Redis add one round trip per verification. Each is
measured with the verified-token cache off (a full verification per call, as for a new token)
and on (the same token again, as a client sends it until it expires).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from fastapi_chassis import AuthSettings, TokenService
from fastapi_chassis.state import MemoryStore

SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def services() -> dict[str, AuthSettings]:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return {
        "HS256": AuthSettings(algorithm="HS256", jwt_secret=SecretStr(SECRET)),
        "ES256": AuthSettings(algorithm="ES256", private_key=SecretStr(pem)),
    }


async def rate(service: TokenService, token: str, seconds: float, revocation: bool) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(200):
            if revocation:
                await service.verify(token)
            else:
                service.decode(token)
        count += 200
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


async def main(seconds: float) -> None:
    print(f"{'algorithm':<10} {'revocation check':<18} {'token cache':<12} {'verifications/s':>16}")
    for name, settings in services().items():
        for cache in (0, settings.verified_token_cache):
            for revocation in (False, True):
                configured = settings.model_copy(update={"verified_token_cache": cache})
                service = TokenService(configured, store=MemoryStore())
                token = service.issue_access_token("user-1", scopes=["notes:read", "notes:write"])
                per_second = await rate(service, token, seconds, revocation)
                label = "memory store" if revocation else "off (decode)"
                on = "on" if cache else "off"
                print(f"{name:<10} {label:<18} {on:<12} {per_second:>16,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    asyncio.run(main(parser.parse_args().seconds))
