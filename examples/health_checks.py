"""Readiness checks: a critical one, a non-critical one, and a sync one run in a thread."""

import shutil

from fastapi_chassis import ChassisSettings, HealthSettings, add_check, build_app

app = build_app(ChassisSettings(health=HealthSettings(check_timeout=1.0, drain_seconds=0)))

DATABASE_UP = True


async def database() -> None:
    if not DATABASE_UP:  # raise (or return False) to fail the check
        raise ConnectionError("database unreachable")


def disk_space() -> bool:
    return shutil.disk_usage("/").free > 100 * 1024 * 1024


async def recommendations() -> None:
    raise TimeoutError("recommendation service is slow today")


add_check(app, "database", database)  # critical: failing makes /readyz 503
add_check(app, "disk", disk_space, timeout=0.5)
add_check(app, "recommendations", recommendations, critical=False)  # reported, still 200
