"""Where one app's time goes on one route: a cProfile excerpt, own time per request.

    python -m benchmarks.hotspots chassis "GET /items/{id}" [--requests 5000] [--top 40]

The variant names are the driver's (`bare`, `popular`, `chassis`, `chassis:<block>,<block>`).
cProfile inflates every Python call (roughly threefold here), so read the proportions, not the
absolute microseconds; the harness' figures are the unprofiled ones.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
from typing import Any

from benchmarks.apps import BENCH_ROUTE_COUNT, build
from benchmarks.driver import Exchange, Lifespan, make_scope, route_cases


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            return path.split("/", 1)[1] if marker == "/lib/python3." else path
    return path


async def profile(variant: str, label: str, requests: int) -> pstats.Stats:
    built = build(variant, routes=BENCH_ROUTE_COUNT)
    app = built.app
    async with Lifespan(app) as lifespan:
        case = {c.label: c for c in route_cases(built.mint())}[label]
        state = lifespan.state or None
        template = make_scope(case, None)

        async def loop(n: int) -> None:
            for _ in range(n):
                exchange = Exchange(case.body)
                scope = dict(template)
                scope["headers"] = list(template["headers"])
                if state is not None:
                    scope["state"] = dict(state)
                await app(scope, exchange.receive, exchange.send)
                if exchange.status != case.status:
                    raise RuntimeError(f"{label} answered {exchange.status}")

        await loop(500)
        profiler = cProfile.Profile()
        profiler.enable()
        await loop(requests)
        profiler.disable()
    return pstats.Stats(profiler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotspots", description=__doc__)
    parser.add_argument("variant")
    parser.add_argument("route", help='one of the benchmarked routes, e.g. "GET /items/{id}"')
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    real_stdout = sys.stdout
    with open(os.devnull, "w") as devnull:  # the apps' log lines
        sys.stdout = devnull
        try:
            stats = asyncio.run(profile(args.variant, args.route, args.requests))
        finally:
            sys.stdout = real_stdout
    n = args.requests
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = [
        (own / n * 1e6, cumulative / n * 1e6, calls / n, f"{_short(path)}:{line}({name})")
        for (path, line, name), (_, calls, own, cumulative, _) in table.items()
    ]
    rows.sort(reverse=True)
    total = sum(row[0] for row in rows)
    print(f"{args.variant} {args.route}: {total:.1f} us/request under cProfile, {n} requests")
    print(f"{'own us':>7} {'cum us':>7} {'calls':>6}  function")
    for own, cumulative, calls, where in rows[: args.top]:
        print(f"{own:7.2f} {cumulative:7.2f} {calls:6.1f}  {where}")


if __name__ == "__main__":
    main()
