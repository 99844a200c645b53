"""Step 0: an existing FastAPI service, before the chassis. Nothing here knows about it.

It has what real services grow: a pure ASGI middleware, an `@app.middleware("http")` one, its own
exception handler for a domain error, a lifespan, and routes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_VERSION = "2024-06-01"


class ServerTimingMiddleware:
    """Pure ASGI: adds `Server-Timing: app;dur=<ms>` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                duration = (time.perf_counter() - start) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={duration:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_timing)


class OutOfStock(Exception):
    def __init__(self, sku: str) -> None:
        super().__init__(sku)
        self.sku = sku


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.stock = {"apple": 3, "pear": 0}
    yield
    app.state.stock.clear()


app = FastAPI(title="orders", lifespan=lifespan)
app.add_middleware(ServerTimingMiddleware)


@app.middleware("http")
async def api_version_header(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers["x-api-version"] = API_VERSION
    return response


@app.exception_handler(OutOfStock)
async def out_of_stock(request: Request, exc: OutOfStock) -> JSONResponse:
    return JSONResponse({"error": "out_of_stock", "sku": exc.sku}, status_code=409)


class OrderIn(BaseModel):
    sku: str
    quantity: int = Field(gt=0)


@app.get("/stock/{sku}")
async def read_stock(sku: str, request: Request) -> dict[str, int]:
    stock: dict[str, int] = request.app.state.stock
    if sku not in stock:
        raise HTTPException(404, f"no product {sku!r}")
    return {sku: stock[sku]}


@app.post("/orders", status_code=201)
async def place_order(order: OrderIn, request: Request) -> dict[str, str | int]:
    stock: dict[str, int] = request.app.state.stock
    if stock.get(order.sku, 0) < order.quantity:
        raise OutOfStock(order.sku)
    stock[order.sku] -= order.quantity
    return {"sku": order.sku, "quantity": order.quantity}


@app.get("/report")
async def report() -> dict[str, float]:
    return {"ratio": 1 / 0}  # a bug: before the chassis, a text/plain 500
