"""Serve one benchmark app with uvicorn (one worker), for the loopback HTTP run.

    python -m benchmarks.serve chassis --port 8123

Uvicorn's own access log is off for every app alike; the apps' log lines go to /dev/null
(the runner starts this with stdout redirected).
"""

from __future__ import annotations

import argparse

import uvicorn

from benchmarks.apps import BENCH_ROUTE_COUNT, build


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument("variant")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--routes", type=int, default=BENCH_ROUTE_COUNT)
    parser.add_argument("--auth", choices=["auto", "pyjwt", "uncached"], default="auto")
    parser.add_argument("--token-out", help="write a bearer token GET /me accepts to this file")
    args = parser.parse_args(argv)
    built = build(args.variant, routes=args.routes, auth=args.auth)
    app = built.app
    if args.token_out:
        with open(args.token_out, "w") as f:
            f.write(built.mint())
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
