"""Micro-benchmarks users ask about, as one JSON document (`python -m benchmarks` renders it).

    python -m benchmarks.micro [--quick] [--redis redis://127.0.0.1:6379/8]

- JWT verifications per second through the chassis' `TokenService` (HS256 and ES256): claim
  checks only (`decode`), and with the revocation lookup in the in-memory store (`verify`),
  both with the verified-token cache off (every call verifies the signature, as for a new
  token); then `verify` of a repeated token served by the cache. pyjwt's own `jwt.decode` is
  the floor under any auth layer without a cache.
- Rate-limit decisions per second: the memory limiter, and the Redis limiter (one script call
  per decision, concurrent callers) when `--redis` names a database. The database is flushed
  afterwards: give one no test uses.
- One page's cost by depth, OFFSET vs keyset cursor (SQLite; see benchmarks/pagination_depth.py).

Each part is also runnable on its own with more detail: `benchmarks.jwt_verify`,
`benchmarks.ratelimit`, `benchmarks.pagination_depth`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import jwt

from benchmarks import jwt_verify, pagination_depth
from fastapi_chassis import PageParams, TokenService
from fastapi_chassis.state import MemoryStore


def _per_second(fn: Callable[[], object], n: int) -> float:
    for _ in range(max(10, n // 10)):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


async def _verify_rate(service: TokenService, token: str, n: int) -> float:
    for _ in range(max(10, n // 10)):
        await service.verify(token)
    start = time.perf_counter()
    for _ in range(n):
        await service.verify(token)
    return n / (time.perf_counter() - start)


def jwt_rates(quick: bool) -> dict[str, dict[str, float]]:
    """Per algorithm: pyjwt decode, TokenService.decode, TokenService.verify (per second)."""
    n = 2000 if quick else 20000
    out: dict[str, dict[str, float]] = {}
    for name, settings in jwt_verify.services().items():
        count = n if name.startswith("HS") else n // 4
        uncached = settings.model_copy(update={"verified_token_cache": 0})
        service = TokenService(uncached, store=MemoryStore())
        token = service.issue_access_token("user-1", scopes=["notes:read"])
        cached = TokenService(settings, store=MemoryStore())  # same key: verifies `token`
        key = service.keys.signing
        out[name] = {
            "pyjwt jwt.decode": _per_second(
                lambda k=key, t=token: jwt.decode(
                    t, k.verifying, algorithms=[k.algorithm], options={"verify_aud": False}
                ),
                count,
            ),
            "TokenService.decode": _per_second(lambda s=service, t=token: s.decode(t), count),
            "TokenService.verify (memory revocation check)": asyncio.run(
                _verify_rate(service, token, count)
            ),
            "TokenService.verify, repeated token (verified-token cache)": asyncio.run(
                _verify_rate(cached, token, n)
            ),
        }
    return out


async def _memory_decisions(total: int) -> float:
    from fastapi_chassis.ratelimit import MemoryLimiter, parse_limits

    limiter = MemoryLimiter()
    limits = parse_limits("100000/minute")
    keys = [f"10.0.{i // 256}.{i % 256}" for i in range(1000)]
    start = time.perf_counter()
    for i in range(total):
        limiter.decide("bench", keys[i % 1000], limits)
    return total / (time.perf_counter() - start)


async def _redis_decisions(url: str, total: int, concurrency: int) -> float:
    from pydantic import SecretStr

    from fastapi_chassis import RedisSettings
    from fastapi_chassis.ratelimit import RedisLimiter, parse_limits
    from fastapi_chassis.state import RedisStore

    store = RedisStore.from_settings(
        RedisSettings(url=SecretStr(url), max_connections=concurrency), prefix="bench:"
    )
    limiter = RedisLimiter(store)
    limits = parse_limits("100000/minute")
    keys = [f"10.0.{i // 256}.{i % 256}" for i in range(1000)]
    queue = iter(range(total))

    async def worker() -> None:
        for i in queue:
            await limiter.hit("bench", keys[i % 1000], limits)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - start)
    finally:
        await store.client.flushdb()
        await store.aclose()


def ratelimit_rates(quick: bool, redis_url: str | None) -> dict[str, float | str]:
    out: dict[str, float | str] = {
        "memory limiter, sequential decide()": asyncio.run(
            _memory_decisions(20_000 if quick else 200_000)
        )
    }
    if redis_url:
        label = "Redis limiter, 50 concurrent callers, one script call each"
        try:
            out[label] = asyncio.run(_redis_decisions(redis_url, 2000 if quick else 20_000, 50))
        except Exception as exc:  # Redis down: say so in the report instead of failing the run
            out[label] = f"failed: {type(exc).__name__}: {exc}"
    return out


def pagination_costs(quick: bool) -> dict[str, Any]:
    rows = 100_000 if quick else 1_000_000
    size, repeat = 10, 5 if quick else 15
    with contextlib.redirect_stdout(sys.stderr):
        db = pagination_depth.open_database(rows)
    table = []
    for depth in pagination_depth.DEPTHS:
        if (depth - 1) * size >= rows:
            continue
        params = PageParams(page=depth, size=size)
        cursor = pagination_depth.cursor_for_page(db, depth, size)
        offset_ms = pagination_depth.median_ms(
            lambda p=params: pagination_depth.offset_page(db, p, rows), repeat
        )
        cursor_ms = pagination_depth.median_ms(
            lambda c=cursor: pagination_depth.cursor_page(db, c, size), repeat
        )
        table.append({"depth": depth, "offset_ms": offset_ms, "cursor_ms": cursor_ms})
    db.close()
    return {"rows": rows, "size": size, "depths": table}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.micro", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--redis", default="", help="Redis URL for the Redis limiter ('' skips)")
    args = parser.parse_args(argv)
    result = {
        "jwt": jwt_rates(args.quick),
        "ratelimit": ratelimit_rates(args.quick, args.redis or None),
        "pagination": pagination_costs(args.quick),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
