"""Instructions per request under callgrind: a noise-free complement to the timed runs.

    python -m benchmarks.instructions [--requests 1000] [--route "GET /items/{id}"] VARIANT...

CPU-time figures on a shared machine swing by several microseconds from run to run; the number
of instructions the interpreter executes per request does not (valgrind's callgrind counts them,
whatever else the machine is doing). Each variant runs twice under callgrind in fresh processes,
once with no timed requests and once with `--requests`; the difference divided by the request
count is its cost per request, startup excluded. Ratios are against the first variant.

Instructions are not time: code that allocates more or misses caches more costs more time per
instruction, and system calls (the access log's write) are not counted. Use this to compare
changes to the same code, and the main harness (`python -m benchmarks`) for the budget.
Needs `valgrind` (Debian: `apt-get install valgrind`); variants are the driver's names.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from benchmarks.__main__ import ROOT, child_env

_COLLECTED = re.compile(r"Collected : (\d+)")


def _child(variant: str, label: str, requests: int) -> None:
    """Inside valgrind: build, start and warm the app, then send `requests` requests."""
    from benchmarks.apps import build
    from benchmarks.driver import Lifespan, one_request, route_cases

    built = build(variant)
    app = built.app
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - log lines cost, the terminal does not

    async def main() -> None:
        async with Lifespan(app) as lifespan:
            case = {c.label: c for c in route_cases(built.mint())}[label]
            state = lifespan.state or None
            for _ in range(200):
                await one_request(app, case, state)
            for _ in range(requests):
                await one_request(app, case, state)

    asyncio.run(main())


def _count(variant: str, label: str, requests: int) -> int:
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    cmd += [sys.executable, "-m", "benchmarks.instructions", "--child", variant, label]
    cmd += ["--requests", str(requests)]
    proc = subprocess.run(
        cmd, env=child_env(), cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"{variant}: valgrind failed:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def per_request(variant: str, label: str, requests: int) -> float:
    """Instructions per request of `variant` on the route `label`."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        empty = pool.submit(_count, variant, label, 0)
        full = pool.submit(_count, variant, label, requests)
        return (full.result() - empty.result()) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("variants", nargs="+", help="e.g. bare chassis: chassis")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--route", default="GET /items/{id}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.variants[0], args.variants[1], args.requests)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 1
    print(f"| variant | instructions per `{args.route}` | the first's count as % of this |")
    print("|---|---:|---:|")
    first: float | None = None
    for variant in args.variants:
        count = per_request(variant, args.route, args.requests)
        first = first or count
        print(f"| {variant} | {count:,.0f} | {first / count * 100:.1f} % |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
