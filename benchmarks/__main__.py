"""Run the whole benchmark: `python -m benchmarks [--quick] [--no-http]`.

1. Probe every app once (fresh process each): check that all apps answer the four routes
   identically, and find which chassis blocks this checkout really wires.
2. In-process rounds: every app in its own fresh process, alternating (A B C A B C ...), for
   several rounds; medians with min/max, ratios against bare FastAPI from the same run.
3. A loopback HTTP run under uvicorn driven by `wrk` (skipped with a message when unavailable).
4. Micro-benchmarks: JWT verifications per second (TokenService, HS256 and ES256), rate-limit
   decisions per second (memory; Redis with --redis), one page's cost by depth (offset vs cursor).

The markdown report is printed and written to benchmarks/results/latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from benchmarks import report
from benchmarks.apps import BENCH_ROUTE_COUNT, TOTAL_ROUTES_LARGE, popular_missing
from benchmarks.chassis_app import COMPONENTS, CORE, FULL_DEFAULT, component_missing
from benchmarks.loopback import ensure_wrk, run_http

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [os.path.join(ROOT, "src"), ROOT]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_driver(variant: str, routes: int, requests: int, auth: str = "auto") -> dict[str, Any]:
    """One fresh process running `benchmarks.driver`; its JSON result."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        cmd = [sys.executable, "-m", "benchmarks.driver", variant, "--routes", str(routes)]
        cmd += ["--requests", str(requests), "--auth", auth, "--out", out]
        proc = subprocess.run(
            cmd, env=child_env(), cwd=ROOT, capture_output=True, text=True, timeout=900
        )
        try:
            with open(out) as f:
                return dict(json.load(f))
        except (OSError, ValueError):
            return {"variant": variant, "error": f"driver exited {proc.returncode}: {proc.stderr}"}
    finally:
        os.unlink(out)


@dataclass
class Variant:
    """One app configuration taking part in the run."""

    key: str  # unique: variant name plus route count
    variant: str
    routes: int
    label: str
    auth: str = "auto"
    unavailable: str | None = None
    notes: list[str] = field(default_factory=list)
    probe: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list)
    in_base: bool = False  # a block without a switch, found in the chassis base


def plan_variants() -> list[Variant]:
    """Main comparison at 4 and 60 routes, then the per-component breakdown."""
    missing_pop = popular_missing()
    out: list[Variant] = []
    for routes in (BENCH_ROUTE_COUNT, TOTAL_ROUTES_LARGE):
        for name, label in (
            ("bare", "bare FastAPI"),
            ("popular", "popular stack"),
            ("chassis", "chassis (full default)"),
        ):
            v = Variant(f"{name}@{routes}", name, routes, label)
            if name == "popular" and missing_pop:
                v.unavailable = "not installed: " + ", ".join(missing_pop) + " (extra `bench`)"
            out.append(v)
    out.append(
        Variant(
            f"chassis:@{BENCH_ROUTE_COUNT}",
            "chassis:",
            BENCH_ROUTE_COUNT,
            "chassis base (switchable blocks off)",
        )
    )
    out.append(
        Variant(
            f"chassis:@{BENCH_ROUTE_COUNT}/pyjwt",
            "chassis:",
            BENCH_ROUTE_COUNT,
            "chassis base, `GET /me` with plain pyjwt",
            auth="pyjwt",
        )
    )
    out.append(
        Variant(
            f"chassis@{BENCH_ROUTE_COUNT}/uncached",
            "chassis",
            BENCH_ROUTE_COUNT,
            "chassis (full default), no verified-token cache",
            auth="uncached",
        )
    )
    for c in COMPONENTS:
        v = Variant(
            f"chassis:{c.name}@{BENCH_ROUTE_COUNT}",
            f"chassis:{c.name}",
            BENCH_ROUTE_COUNT,
            f"+ {c.label}",
        )
        v.unavailable = component_missing(c.name)
        out.append(v)
    out.append(
        Variant(
            f"chassis:core@{BENCH_ROUTE_COUNT}",
            "chassis:" + ",".join(CORE),
            BENCH_ROUTE_COUNT,
            "core stack (id, headers, body limit, boundary)",
        )
    )
    return out


def _same_answers(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for route, check in a.get("checks", {}).items():
        other = b.get("checks", {}).get(route)
        if other is None:
            return f"{route}: not answered"
        if (check["status"], check["body"]) != (other["status"], other["body"]):
            return f"{route}: {other['status']} {str(other['body'])[:80]}"
    return None


def probe_all(variants: list[Variant]) -> None:
    """One checked request per route per app; decides what is measured and how."""
    bare = {v.routes: v for v in variants if v.variant == "bare"}
    for v in variants:
        if v.unavailable:
            continue
        result = run_driver(v.variant, v.routes, 0, v.auth)
        if "error" in result:
            v.unavailable = "build failed: " + result["error"].strip().splitlines()[-1]
            continue
        v.probe = result
        v.notes = list(result.get("notes", []))
    for v in variants:
        if v.unavailable or v.variant == "bare":
            continue
        reference = bare[v.routes].probe
        diff = _same_answers(reference, v.probe)
        if diff and v.variant.startswith("chassis") and "/me: chassis auth" in v.notes:
            retry = run_driver(v.variant, v.routes, 0, auth="pyjwt")
            if "error" not in retry and _same_answers(reference, retry) is None:
                v.auth, v.probe = "pyjwt", retry
                v.notes = [n for n in retry.get("notes", []) if not n.startswith("/me")]
                v.notes.append(f"/me: pyjwt fallback (chassis auth answered differently: {diff})")
                diff = None
        if diff:
            v.unavailable = f"answers differ from bare FastAPI: {diff}"
    by_key = {v.key: v for v in variants}
    base = by_key[f"chassis:@{BENCH_ROUTE_COUNT}"]
    plain = by_key[f"chassis:@{BENCH_ROUTE_COUNT}/pyjwt"]
    if "/me: chassis auth" not in base.notes:
        plain.unavailable = "the base row already uses plain pyjwt for `GET /me`"
    base_middleware = " ".join(base.probe.get("fingerprint", {}).get("middleware", []))
    for c in COMPONENTS:
        v = next(x for x in variants if x.variant == f"chassis:{c.name}")
        if v.unavailable and any(m in base_middleware for m in c.base_markers):
            v.unavailable = "no switch: always on, so it is measured in the chassis base row"
            v.in_base = True
    for v in variants:
        name = v.variant.split(":", 1)[1] if v.variant.startswith("chassis:") else ""
        if v.unavailable or name not in {c.name for c in COMPONENTS}:
            continue
        if v.probe.get("fingerprint") == base.probe.get("fingerprint"):
            v.unavailable = "setting exists but install() wires nothing for it on this checkout"


def wired_components(variants: list[Variant]) -> list[str]:
    by_variant = {v.variant: v for v in variants}
    return [
        c.name
        for c in COMPONENTS
        if not by_variant[f"chassis:{c.name}"].unavailable
        or by_variant[f"chassis:{c.name}"].in_base
    ]


def run_rounds(variants: list[Variant], rounds: int, requests: int, clock: str) -> None:
    active = [v for v in variants if not v.unavailable]
    for r in range(rounds):
        for v in active:
            print(f"  round {r + 1}/{rounds}: {v.key:<40}", end="\r", file=sys.stderr, flush=True)
            result = run_driver(v.variant, v.routes, requests, v.auth)
            if "error" in result:
                v.unavailable = "failed during the run: " + result["error"].splitlines()[-1]
                continue
            v.samples.append(result["us" if clock == "cpu" else "wall_us"])
    print(file=sys.stderr)


def environment_info(args: argparse.Namespace) -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    def git(*cmd: str) -> str:
        proc = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip()

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git("rev-parse", "--short", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
        "versions": {d: version(d) for d in ("fastapi", "starlette", "pydantic", "uvicorn")},
        "requests": args.requests,
        "rounds": args.rounds,
        "http_seconds": f"{args.http_seconds:g}",
        "clock": args.clock,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests, rounds, seconds")
    parser.add_argument("--no-http", action="store_true", help="skip the uvicorn + wrk run")
    parser.add_argument("--rounds", type=int, help="in-process rounds (default 5; quick 2)")
    parser.add_argument("--requests", type=int, help="timed requests per route per process")
    parser.add_argument("--http-seconds", type=float, help="wrk duration per app and route")
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="in-process timing: the process' CPU time (default; robust on a shared machine) "
        "or wall-clock time (use on an otherwise idle machine)",
    )
    parser.add_argument(
        "--redis",
        default="",
        help="Redis URL for the Redis rate-limit micro-benchmark, e.g. redis://127.0.0.1:6379/8 "
        "(that database is flushed afterwards; default: skipped)",
    )
    parser.add_argument("--out", default=os.path.join(RESULTS, "latest.md"))
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.requests = args.requests or (300 if args.quick else 2000)
    args.http_seconds = args.http_seconds or (2.0 if args.quick else 5.0)

    info = environment_info(args)
    variants = plan_variants()
    print("probing apps ...", file=sys.stderr)
    probe_all(variants)
    print(f"in-process: {args.rounds} rounds x {args.requests} requests/route", file=sys.stderr)
    run_rounds(variants, args.rounds, args.requests, args.clock)

    http: dict[str, Any] = {}
    http_note = None
    if args.no_http:
        http_note = "skipped (--no-http)"
    else:
        wrk = ensure_wrk()
        if wrk is None:
            http_note = "skipped: `wrk` is not installed (Debian: `apt-get install wrk`)"
        else:
            pairs = [
                (v.variant, v.auth)
                for v in variants
                if v.key == f"{v.variant}@{BENCH_ROUTE_COUNT}"  # the main three, as configured
                and v.variant in ("bare", "popular", "chassis")
                and not v.unavailable
            ]
            print(
                f"loopback HTTP: {len(pairs)} apps x {args.http_seconds:g}s per route",
                file=sys.stderr,
            )
            http = run_http(wrk, pairs, child_env(), args.http_seconds, BENCH_ROUTE_COUNT)
    print("micro-benchmarks ...", file=sys.stderr)
    micro_cmd = [sys.executable, "-m", "benchmarks.micro", "--redis", args.redis]
    micro_cmd += ["--quick"] if args.quick else []
    micro = json.loads(
        subprocess.run(
            micro_cmd, env=child_env(), cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    )

    text = report.render(
        info, variants, wired_components(variants), FULL_DEFAULT, CORE, http, http_note, micro
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    print(f"written to {os.path.relpath(args.out, ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
