"""The markdown report of one `python -m benchmarks` run."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from benchmarks.apps import BENCH_ROUTE_COUNT, TOTAL_ROUTES_LARGE
from benchmarks.chassis_app import COMPONENTS_BY_NAME

if TYPE_CHECKING:
    from benchmarks.__main__ import Variant

ROUTES = ("GET /items/{id}", "GET /items", "POST /items", "GET /me")
MAIN = ("bare", "popular", "chassis")


def median_of(v: Variant, route: str) -> float | None:
    values = [s[route] for s in v.samples if route in s]
    return statistics.median(values) if values else None


def spread(v: Variant, route: str) -> str:
    values = [s[route] for s in v.samples if route in s]
    if not values:
        return "n/a"
    return f"{statistics.median(values):.1f} [{min(values):.1f}–{max(values):.1f}]"


def pct_of(reference: float | None, value: float | None) -> float | None:
    """Requests/s of `value` as a percentage of `reference` (both in µs per request)."""
    if reference is None or value is None:
        return None
    return 100.0 * reference / value


def fmt_pct(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.0f} %"


def fmt_x(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}×"


def _names(names: Sequence[str]) -> str:
    return ", ".join(COMPONENTS_BY_NAME[n].label for n in names) or "none"


def _comparison(lines: list[str], by_key: dict[str, Variant], routes: int) -> None:
    bare, pop, ch = (by_key[f"{n}@{routes}"] for n in MAIN)
    lines.append(
        "| route | bare µs | popular µs | chassis µs | bare rps | chassis % of bare rps "
        "| chassis × popular rps |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for route in ROUTES:
        b, p, c = (median_of(v, route) for v in (bare, pop, ch))
        times = None if p is None or c is None else p / c
        lines.append(
            f"| `{route}` | {spread(bare, route)} | {spread(pop, route)} | {spread(ch, route)} "
            f"| {'n/a' if b is None else f'{1e6 / b:,.0f}'} | {fmt_pct(pct_of(b, c))} "
            f"| {fmt_x(times)} |"
        )
    for v in (pop, ch):
        if v.unavailable:
            lines.append(f"\n{v.label}: n/a — {v.unavailable}")


def _budget(
    lines: list[str],
    by_key: dict[str, Variant],
    wired: list[str],
    full: Sequence[str],
    core: Sequence[str],
) -> None:
    def worst(a: str, b: str) -> float | None:
        values = [pct_of(median_of(by_key[a], r), median_of(by_key[b], r)) for r in ROUTES]
        present = [x for x in values if x is not None]
        return min(present) if present else None

    def verdict(value: float | None, target: float, on: list[str], wanted: Sequence[str]) -> str:
        if value is None:
            return "n/a"
        met = "met" if value >= target else "**not met**"
        if len(on) < len(wanted):
            return f"{met} (only {len(on)} of {len(wanted)} features on)"
        return met

    small, large = BENCH_ROUTE_COUNT, TOTAL_ROUTES_LARGE
    core_on = [n for n in core if n in wired]
    full_on = [n for n in full if n in wired]
    core_pct = worst(f"bare@{small}", f"chassis:core@{small}")
    full_pct = worst(f"bare@{small}", f"chassis@{small}")
    full_pct_large = worst(f"bare@{large}", f"chassis@{large}")

    def added(routes: int) -> float | None:
        b = median_of(by_key[f"bare@{routes}"], ROUTES[0])
        c = median_of(by_key[f"chassis@{routes}"], ROUTES[0])
        return None if b is None or c is None else c - b

    a_small, a_large = added(small), added(large)
    times = [
        None if p is None or c is None else p / c
        for p, c in (
            (median_of(by_key[f"popular@{small}"], r), median_of(by_key[f"chassis@{small}"], r))
            for r in ROUTES
        )
    ]
    present = [t for t in times if t is not None]
    min_times = min(present) if present else None

    lines.append("| budget line | target | measured (worst route) | verdict |")
    lines.append("|---|---|---|---|")
    lines.append(
        f"| core stack vs bare ({_names(core_on)}) | ≥ 85 % | {fmt_pct(core_pct)} "
        f"| {verdict(core_pct, 85, core_on, core)} |"
    )
    lines.append(
        f"| full default vs bare, {small}-route app ({_names(full_on)}) | ≥ 60 % "
        f"| {fmt_pct(full_pct)} | {verdict(full_pct, 60, full_on, full)} |"
    )
    lines.append(
        f"| full default vs bare, {large}-route app | ≥ 60 % | {fmt_pct(full_pct_large)} "
        f"| {verdict(full_pct_large, 60, full_on, full)} |"
    )
    if a_small is not None and a_large is not None:
        grows = a_large - a_small
        ok = "met" if grows <= max(5.0, 0.25 * abs(a_small)) else "**not met**"
        lines.append(
            f"| chassis cost does not grow with routes (`{ROUTES[0]}`, chassis − bare) "
            f"| ≤ max(5 µs, 25 %) more | {a_small:+.1f} µs → {a_large:+.1f} µs | {ok} |"
        )
    lines.append(
        f"| chassis vs popular stack, every route | ≥ 4× | {fmt_x(min_times)} "
        f"| {verdict(None if min_times is None else min_times * 100, 400, full_on, full)} |"
    )
    uncached = by_key.get(f"chassis@{small}/uncached")
    if uncached is not None and not uncached.unavailable:
        me = ROUTES[-1]
        popular_me, chassis_me = median_of(by_key[f"popular@{small}"], me), median_of(uncached, me)
        ratio = None if popular_me is None or chassis_me is None else popular_me / chassis_me
        lines.append(
            f"| the same, `{me}` with the verified-token cache off (every request verifies "
            f"its token in full) | ≥ 4× | {fmt_x(ratio)} "
            f"| {verdict(None if ratio is None else ratio * 100, 400, full_on, full)} |"
        )


def _breakdown(lines: list[str], variants: list[Variant], by_key: dict[str, Variant]) -> None:
    bare = by_key[f"bare@{BENCH_ROUTE_COUNT}"]
    base = by_key[f"chassis:@{BENCH_ROUTE_COUNT}"]
    rows = [v for v in variants if v.variant.startswith("chassis:")]
    head = " | ".join(f"% bare `{r}`" for r in ROUTES)
    lines.append(
        f"| configuration | `{ROUTES[0]}` µs | vs bare µs | vs base µs (the block alone) | {head} |"
    )
    lines.append("|---|---:|---:|---:|" + "---:|" * len(ROUTES))
    b0, base0 = median_of(bare, ROUTES[0]), median_of(base, ROUTES[0])
    lines.append(f"| bare FastAPI | {spread(bare, ROUTES[0])} | – | – |" + " 100 % |" * len(ROUTES))
    for v in rows:
        if v.unavailable:
            gap = " |" * (len(ROUTES) - 1)
            lines.append(f"| {v.label} | n/a | – | – | {v.unavailable} |{gap}")
            continue
        m = median_of(v, ROUTES[0])
        add = "n/a" if m is None or b0 is None else f"{m - b0:+.1f}"
        alone = "–" if v is base or m is None or base0 is None else f"{m - base0:+.1f}"
        pcts = " | ".join(fmt_pct(pct_of(median_of(bare, r), median_of(v, r))) for r in ROUTES)
        lines.append(f"| {v.label} | {spread(v, ROUTES[0])} | {add} | {alone} | {pcts} |")
    lines.append(
        f"\n`{ROUTES[-1]}` uses the chassis' own auth dependency where the checkout has one "
        "(see Notes), so its column includes the difference between that and plain pyjwt; "
        "the row with plain pyjwt isolates it."
    )


def _http(lines: list[str], http: dict[str, Any], note: str | None, seconds: str) -> None:
    if note:
        lines.append(note)
        return
    lines.append(
        "| route | bare rps | popular rps | chassis rps | bare CPU µs | popular CPU µs "
        "| chassis CPU µs | chassis % of bare (CPU) | chassis × popular (CPU) |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def value(name: str, route: str, key: str) -> float | None:
        entry = http.get(name, {}).get(route)
        if not entry or entry.get(key) is None or entry.get("non_2xx"):
            return None
        return float(entry[key])

    for route in ROUTES:
        rps = ["n/a" if x is None else f"{x:,.0f}" for x in (value(n, route, "rps") for n in MAIN)]
        b, p, c = (value(n, route, "server_cpu_us") for n in MAIN)
        cpu = ["n/a" if x is None else f"{x:.0f}" for x in (b, p, c)]
        times = None if p is None or c is None else p / c
        lines.append(
            f"| `{route}` | {' | '.join(rps)} | {' | '.join(cpu)} | {fmt_pct(pct_of(b, c))} "
            f"| {fmt_x(times)} |"
        )
    for name, routes in http.items():
        for route, entry in routes.items():
            if "message" in entry:
                lines.append(f"\n{name}: {entry['message']}")
            elif entry.get("non_2xx") or entry.get("socket_errors"):
                lines.append(
                    f"\n{name} `{route}`: {entry.get('non_2xx')} non-2xx responses; "
                    f"{entry.get('socket_errors') or 'no socket errors'}"
                )
    lines.append(
        f"\nwrk: 1 thread, 16 connections, {seconds} s per app and route, on the same machine. "
        "rps is wall-clock throughput (wrk competes for the same cores); CPU µs is the server "
        "process' CPU time per request (from /proc), which other load disturbs far less."
    )


def render(
    info: dict[str, Any],
    variants: list[Variant],
    wired: list[str],
    full: Sequence[str],
    core: Sequence[str],
    http: dict[str, Any],
    http_note: str | None,
    micro: dict[str, Any],
) -> str:
    by_key = {v.key: v for v in variants}
    v = info["versions"]
    lines = [
        "# fastapi-chassis benchmark",
        "",
        f"{info['date']}, checkout `{info['branch']}` @ `{info['commit']}`"
        f"{' (uncommitted changes)' if info['dirty'] else ''}; Python {info['python']}, "
        f"fastapi {v['fastapi']}, starlette {v['starlette']}, pydantic {v['pydantic']}, "
        f"uvicorn {v['uvicorn']}; {info['cpus']} CPUs, load average at start "
        f"{info['load'][0]:.2f}.",
        "",
        f"Chassis blocks wired on this checkout: {_names(wired)}. "
        f"Full default stack = {_names(full)}; those not wired are simply absent below.",
        "",
        f"In-process: raw ASGI calls, {info['requests']} timed requests per route per process, "
        f"{info['rounds']} rounds, every app in a fresh process, apps alternating. Cells: µs "
        "per request, median [min–max] over rounds; ratios compare medians from this run. "
        + (
            "Clock: the process' CPU time (user + system, all threads), so rps means requests "
            "per second of one busy core; other load on the machine inflates it far less than "
            "wall time."
            if info.get("clock", "cpu") == "cpu"
            else "Clock: wall time."
        ),
        "",
        f"## In-process, {BENCH_ROUTE_COUNT}-route apps",
        "",
    ]
    _comparison(lines, by_key, BENCH_ROUTE_COUNT)
    lines += ["", f"## In-process, {TOTAL_ROUTES_LARGE}-route apps", ""]
    lines.append(
        f"Same apps with {TOTAL_ROUTES_LARGE - BENCH_ROUTE_COUNT} extra routes registered "
        "before the benchmarked ones."
    )
    lines.append("")
    _comparison(lines, by_key, TOTAL_ROUTES_LARGE)
    lines += ["", "## Budget (issue 8)", ""]
    _budget(lines, by_key, wired, full, core)
    lines += ["", "## Per-component breakdown (bare + one chassis block at a time)", ""]
    _breakdown(lines, variants, by_key)
    lines += ["", "## Loopback HTTP (uvicorn, one worker, wrk)", ""]
    _http(lines, http, http_note, f"{info.get('http_seconds', '')}")
    lines += ["", "## Micro-benchmarks", ""]
    _micro(lines, micro)
    notes = sorted({n for x in variants for n in x.notes})
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _micro(lines: list[str], micro: dict[str, Any]) -> None:
    lines.append("| operation | per second | µs each |")
    lines.append("|---|---:|---:|")
    for alg, rates in micro.get("jwt", {}).items():
        for label, per_s in rates.items():
            lines.append(f"| JWT {alg}: {label} | {per_s:,.0f} | {1e6 / per_s:.1f} |")
    for label, per_s in micro.get("ratelimit", {}).items():
        if isinstance(per_s, str):
            lines.append(f"| rate limit: {label} | {per_s} | |")
        else:
            lines.append(f"| rate limit: {label} | {per_s:,.0f} | {1e6 / per_s:.1f} |")
    if not any(k.startswith("Redis") for k in micro.get("ratelimit", {})):
        lines.append("| rate limit: Redis limiter | skipped (run with `--redis URL`) | |")
    pages = micro.get("pagination")
    if pages:
        lines += [
            "",
            f"One page of {pages['size']} rows from SQLite ({pages['rows']:,} rows), "
            "median ms per page:",
            "",
            "| depth (page) | offset ms | cursor ms | offset / cursor |",
            "|---:|---:|---:|---:|",
        ]
        for row in pages["depths"]:
            ratio = row["offset_ms"] / row["cursor_ms"]
            lines.append(
                f"| {row['depth']:,} | {row['offset_ms']:.3f} | {row['cursor_ms']:.3f} "
                f"| {ratio:.1f}× |"
            )
