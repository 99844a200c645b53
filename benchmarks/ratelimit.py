"""Rate-limit throughput and overhead.

    PYTHONPATH=src python -m benchmarks.ratelimit [--redis redis://127.0.0.1:6379/2]

Prints decisions per second for the memory and Redis limiters (one process, concurrent callers
and a pipelined batch), the cost of a Redis decision as a client's log grows, and the latency
the middleware adds per request, driving the apps as raw ASGI callables (no HTTP, no client
library), against a bare FastAPI app.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from benchmarks.driver import http_scope, time_requests
from fastapi_chassis import ChassisSettings, RateLimitSettings, RedisSettings, build_app
from fastapi_chassis.ratelimit import MemoryLimiter, RedisLimiter, parse_limits
from fastapi_chassis.ratelimit.backends import _SLIDING_WINDOW_LUA
from fastapi_chassis.state import RedisStore, get_store

CLIENTS = 1000
HIGH = parse_limits("100000/minute")


async def _rate(label: str, total: int, run: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await run()
    elapsed = time.perf_counter() - start
    per_second = total / elapsed
    print(f"  {label:<52} {per_second:>12,.0f} decisions/s")
    return per_second


async def memory_decisions(total: int) -> None:
    limiter = MemoryLimiter()
    keys = [f"10.0.{i // 256}.{i % 256}" for i in range(CLIENTS)]

    async def sequential() -> None:
        for i in range(total):
            limiter.decide("bench", keys[i % CLIENTS], HIGH)

    async def concurrent() -> None:
        queue = iter(range(total))

        async def worker() -> None:
            for i in queue:
                await limiter.hit("bench2", keys[i % CLIENTS], HIGH)

        await asyncio.gather(*(worker() for _ in range(50)))

    print("memory limiter")
    await _rate("sequential decide()", total, sequential)
    await _rate("50 concurrent callers, await hit()", total, concurrent)


async def redis_decisions(url: str, total: int, concurrency: int) -> None:
    store = RedisStore.from_settings(
        RedisSettings(url=SecretStr(url), max_connections=concurrency), prefix="bench:"
    )
    limiter = RedisLimiter(store)
    keys = [f"10.0.{i // 256}.{i % 256}" for i in range(CLIENTS)]
    import redis

    print(f"redis limiter ({url}, redis-py {redis.__version__})")
    try:
        samples = []
        for _ in range(500):
            start = time.perf_counter()
            await store.client.ping()
            samples.append(time.perf_counter() - start)
        ping = statistics.median(samples) * 1e6
        print(f"  {'PING round trip (median, for scale)':<52} {ping:9.0f} µs")
        queue = iter(range(total))

        async def worker() -> None:
            for i in queue:
                await limiter.hit("bench", keys[i % CLIENTS], HIGH)

        async def concurrent() -> None:
            await asyncio.gather(*(worker() for _ in range(concurrency)))

        await _rate(f"{concurrency} concurrent callers, one script call each", total, concurrent)

        script = store.client.register_script(_SLIDING_WINDOW_LUA)
        batch = 200

        async def pipelined() -> None:
            for start in range(0, total, batch):
                pipe = store.client.pipeline(transaction=False)
                for i in range(start, min(start + batch, total)):
                    key = store.key(f"rl:{{p:{keys[i % CLIENTS]}}}:60")
                    await script(keys=[key], args=[60_000, 100_000], client=pipe)
                await pipe.execute()

        await _rate(f"pipelined, {batch} decisions per round trip", total, pipelined)

        print("  one admitted decision vs. entries already in the client's log (sequential):")
        for entries in (0, 100, 1000, 10_000, 50_000):
            policy = f"fill{entries}"
            for start in range(0, entries, batch):
                pipe = store.client.pipeline(transaction=False)
                for _ in range(start, min(start + batch, entries)):
                    await limiter._script(
                        keys=[store.key(f"rl:{{{policy}:x}}:60")],
                        args=[60_000, 100_000],
                        client=pipe,
                    )
                await pipe.execute()
            samples = []
            for _ in range(30):
                start_time = time.perf_counter()
                await limiter._script(
                    keys=[store.key(f"rl:{{{policy}:x}}:60")], args=[60_000, 100_000]
                )
                samples.append(time.perf_counter() - start_time)
            median = statistics.median(samples) * 1e6
            print(f"    {entries:>6} entries: {median:8.0f} µs")
    finally:
        await store.client.flushdb()
        await store.aclose()


async def _per_request(app: Any, requests: int) -> float:
    clients = [f"10.1.{i // 256}.{i % 256}" for i in range(CLIENTS)]

    def scope(i: int) -> dict[str, Any]:
        return http_scope("/ping", client=clients[i % CLIENTS])

    await time_requests(app, scope, 200)  # warm up: middleware stack, caches
    runs = [await time_requests(app, scope, requests, clock="wall") for _ in range(5)]
    return min(runs) / 1e6


def _with_ping(app: FastAPI) -> FastAPI:
    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    return app


async def middleware_latency(redis_url: str | None, requests: int) -> None:
    bare = _with_ping(FastAPI())
    off = _with_ping(build_app(ChassisSettings()))
    memory = _with_ping(
        build_app(
            ChassisSettings(rate_limit=RateLimitSettings(enabled=True, default="100000/minute"))
        )
    )
    print(f"added latency per request (raw ASGI, best of 5 x {requests} sequential requests)")
    baseline = await _per_request(bare, requests)
    print(f"  {'bare FastAPI':<40} {baseline * 1e6:8.1f} µs")
    for label, app in (("chassis, rate limiting off", off), ("chassis, memory limiter", memory)):
        took = await _per_request(app, requests)
        print(f"  {label:<40} {took * 1e6:8.1f} µs  (+{(took - baseline) * 1e6:.1f} µs)")
    if redis_url:
        redis_app = _with_ping(
            build_app(
                ChassisSettings(
                    service_name="bench",
                    rate_limit=RateLimitSettings(enabled=True, default="100000/minute"),
                    redis=RedisSettings(url=SecretStr(redis_url)),
                )
            )
        )
        try:
            took = await _per_request(redis_app, requests)
            label = "chassis, Redis limiter"
            print(f"  {label:<40} {took * 1e6:8.1f} µs  (+{(took - baseline) * 1e6:.1f} µs)")
        finally:
            store = get_store(redis_app)
            await store.client.flushdb()  # type: ignore[attr-defined]
            await store.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/2", help="'' to skip Redis")
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    await memory_decisions(args.decisions)
    if args.redis:
        await redis_decisions(args.redis, args.decisions // 5, args.concurrency)
    await middleware_latency(args.redis or None, args.requests)


if __name__ == "__main__":
    asyncio.run(main())
