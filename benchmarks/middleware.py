"""Per-request cost of the request-id, security-headers and body-limit middleware.

Run: `PYTHONPATH=src python -m benchmarks.middleware`. Each variant serves GET /items/{id};
ratios are against bare FastAPI with the same route.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from benchmarks.driver import compare
from fastapi_chassis import (
    BodyLimitMiddleware,
    ChassisSettings,
    RequestIDMiddleware,
    SecurityHeadersMiddleware,
    build_app,
)


def _route(app: FastAPI) -> FastAPI:
    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


def bare() -> FastAPI:
    return _route(FastAPI(openapi_url=None))


def with_middleware(*classes: type) -> Callable[[], FastAPI]:
    def make() -> FastAPI:
        app = bare()
        for cls in reversed(classes):
            app.add_middleware(cls)
        return app

    return make


def chassis() -> FastAPI:
    return _route(build_app(ChassisSettings(environment="test")))


VARIANTS: dict[str, Callable[[], FastAPI]] = {
    "bare FastAPI": bare,
    "+ RequestIDMiddleware": with_middleware(RequestIDMiddleware),
    "+ SecurityHeadersMiddleware": with_middleware(SecurityHeadersMiddleware),
    "+ BodyLimitMiddleware": with_middleware(BodyLimitMiddleware),
    "+ all three": with_middleware(
        RequestIDMiddleware, SecurityHeadersMiddleware, BodyLimitMiddleware
    ),
    "build_app() (as installed)": chassis,
}


def main() -> None:
    results = compare({name: make() for name, make in VARIANTS.items()}, "/items/42")
    base = results["bare FastAPI"]
    print(f"{'variant':32} {'us/request':>10} {'ratio':>7} {'added us':>9}")
    for name, us in results.items():
        print(f"{name:32} {us:10.1f} {us / base:7.3f} {us - base:9.1f}")


if __name__ == "__main__":
    main()
