"""The benchmarked apps: bare FastAPI, a popular-packages stack, and the chassis.

All apps serve the same four routes through the same handlers; only what wraps them differs.
`build(variant, routes=...)` returns the app and notes on what it really contains. Variants:

- `bare`: `FastAPI()` and the routes.
- `popular`: the features composed the way tutorials do it (see `_build_popular`).
- `chassis`: `build_app()` with the chassis' full default stack switched on.
- `chassis:<a>,<b>`: `build_app()` with only the named components on (`chassis:` alone is the
  chassis base: every switchable block off). See `benchmarks.chassis_app`.

No `from __future__ import annotations` here: the routes are defined inside functions and use
local `Annotated` dependencies, which FastAPI must be able to resolve at definition time.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

JWT_SECRET = "benchmark-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
JWT_SUBJECT = "user-42"
BODY_LIMIT = 1024 * 1024
TOTAL_ROUTES_LARGE = 60
BENCH_ROUTE_COUNT = 4  # GET /items/{id}, GET /items, POST /items, GET /me


def make_token() -> str:
    """An HS256 access token for `JWT_SUBJECT`, valid for an hour, with the usual claims."""
    now = int(time.time())
    claims = {
        "sub": JWT_SUBJECT,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "scope": "items:read",
        "type": "access",
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


# --- routes shared by every app -------------------------------------------------------------


class Item(BaseModel):
    id: int
    name: str
    price: float
    tags: list[str]
    in_stock: bool


class ItemIn(BaseModel):
    name: str
    price: float
    tags: list[str]
    in_stock: bool
    quantity: int


class Me(BaseModel):
    sub: str


ITEMS = [
    Item(id=i, name=f"item-{i}", price=9.5 + i, tags=["a", "b"], in_stock=i % 2 == 0)
    for i in range(20)
]


def add_filler_routes(app: FastAPI, count: int) -> None:
    """`count` extra GET routes, registered before the benchmarked ones (so they are scanned)."""
    for i in range(count):

        async def filler(thing_id: int, _i: int = i) -> dict[str, int]:
            return {"route": _i, "thing": thing_id}

        app.add_api_route(f"/r{i}/things/{{thing_id}}", filler, methods=["GET"], name=f"r{i}")


def add_routes(
    app: FastAPI, me_dependency: Callable[..., Any], subject_of: Callable[[Any], str] = str
) -> None:
    """The four benchmarked routes; `subject_of(me_dependency())` is the verified subject.

    Each app's `/me` is written the way its users would: the tutorial dependency returns the
    subject string, the chassis hands the handler a `Principal`.
    """
    subject = Annotated[Any, Depends(me_dependency)]

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> Item:
        return Item(id=item_id, name=f"item-{item_id}", price=9.5, tags=["a", "b"], in_stock=True)

    @app.get("/items")
    async def list_items() -> list[Item]:
        return ITEMS

    @app.post("/items", status_code=201)
    async def create_item(body: ItemIn) -> Item:
        return Item(id=1, name=body.name, price=body.price, tags=body.tags, in_stock=body.in_stock)

    @app.get("/me")
    async def me(value: subject) -> Me:
        return Me(sub=subject_of(value))


_bearer = HTTPBearer()


async def pyjwt_subject(
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(_bearer)],
) -> str:
    """The tutorial dependency: verify an HS256 bearer token with pyjwt, return `sub`."""
    try:
        claims = jwt.decode(credentials.credentials, JWT_SECRET, algorithms=["HS256"])
    except jwt.PyJWTError as exc:
        raise HTTPException(
            status_code=401, detail="invalid token", headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    return str(claims["sub"])


@dataclass
class Built:
    """An app plus what the harness should know about it."""

    app: FastAPI
    notes: list[str] = field(default_factory=list)
    #: Mints the bearer token `GET /me` accepts; called once the app has started.
    mint: Callable[[], str] = make_token


def build(variant: str, *, routes: int = BENCH_ROUTE_COUNT, auth: str = "auto") -> Built:
    """Build the app named by `variant` with `routes` routes in total (4 or more).

    `auth` is "auto" (the chassis' own auth when it exists) or "pyjwt" (always the plain
    pyjwt dependency); it only matters for chassis variants.
    """
    fillers = max(0, routes - BENCH_ROUTE_COUNT)
    if variant == "bare":
        app = FastAPI()
        add_filler_routes(app, fillers)
        add_routes(app, pyjwt_subject)
        return Built(app)
    if variant == "popular":
        return _build_popular(fillers)
    if variant == "chassis" or variant.startswith("chassis:"):
        from benchmarks.chassis_app import FULL_DEFAULT, build_chassis

        names = variant.split(":", 1)[1].split(",") if ":" in variant else FULL_DEFAULT
        return build_chassis([n for n in names if n], fillers, auth)
    raise ValueError(f"unknown variant {variant!r}")


# --- (2) the popular-packages stack ---------------------------------------------------------


def popular_missing() -> list[str]:
    """Distributions the popular stack needs that are not installed (extra `bench`)."""
    import importlib.util

    modules = {
        "asgi-correlation-id": "asgi_correlation_id",
        "secure": "secure",
        "prometheus-fastapi-instrumentator": "prometheus_fastapi_instrumentator",
        "structlog": "structlog",
    }
    return [dist for dist, mod in modules.items() if importlib.util.find_spec(mod) is None]


def _build_popular(fillers: int) -> Built:
    import structlog
    from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from prometheus_fastapi_instrumentator import Instrumentator
    from secure import Secure
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
    from starlette.responses import Response

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger("access")
    secure_headers = Secure.with_default_headers()

    app = FastAPI()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": {"status": exc.status_code, "message": exc.detail}},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": {"status": 422, "message": "validation failed", "details": exc.errors()}},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": {"status": 500, "message": "internal error"}}, 500)

    @app.middleware("http")
    async def access_log(request: Request, call_next: RequestResponseEndpoint) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        log.info(
            "request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - start) * 1000, 3),
            request_id=correlation_id.get(),
            client=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        )
        return response

    @app.middleware("http")
    async def security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        await secure_headers.set_headers_async(response)
        return response

    class BodyLimitMiddleware(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            length = request.headers.get("content-length")
            if length is not None and int(length) > BODY_LIMIT:
                return JSONResponse({"error": {"status": 413, "message": "too large"}}, 413)
            return await call_next(request)

    app.add_middleware(BodyLimitMiddleware)
    Instrumentator().instrument(app).expose(app)
    app.add_middleware(CorrelationIdMiddleware)

    add_filler_routes(app, fillers)
    add_routes(app, pyjwt_subject)
    return Built(app)
