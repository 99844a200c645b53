"""The benchmarked apps: bare FastAPI, a popular-packages stack, and the chassis.

All apps serve the same four routes through the same handlers; only what wraps them differs.
`build(variant, routes=...)` returns the app and notes on what it really contains. Variants:

- `bare`: `FastAPI()` and the routes.
- `popular`: the features composed the way tutorials do it (see `_build_popular`).
- `chassis`: `build_app()` with the chassis' full default stack (`FULL_DEFAULT`) switched on.
- `chassis:<a>,<b>`: `build_app()` with only the named components on (`chassis:` alone is the
  chassis base: every switchable block off).

Blocks land on their own branches, so every chassis setting is feature-detected: a component
whose settings fields do not exist is reported as unavailable instead of failing the build.

No `from __future__ import annotations` here: the routes are defined inside functions and use
local `Annotated` dependencies, which FastAPI must be able to resolve at definition time.
"""

import time
import uuid
from collections.abc import Callable, Iterable
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


def add_routes(app: FastAPI, me_dependency: Callable[..., Any]) -> None:
    """The four benchmarked routes; `me_dependency` returns the verified subject."""
    subject = Annotated[str, Depends(me_dependency)]

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
    async def me(sub: subject) -> Me:
        return Me(sub=sub)


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
    if variant == "chassis":
        return _build_chassis(FULL_DEFAULT, fillers, auth)
    if variant.startswith("chassis:"):
        names = [n for n in variant.split(":", 1)[1].split(",") if n]
        return _build_chassis(names, fillers, auth)
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


# --- (3) the chassis ------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One switchable chassis block and the settings that turn it on and off."""

    name: str
    label: str
    #: (group, field, value when on, value when off); all must exist for the block to count.
    switches: tuple[tuple[str, str, Any, Any], ...]
    #: Extra (group, field, value) applied when on, only where the field exists.
    extras: tuple[tuple[str, str, Any], ...] = ()
    #: For a block with no switch: substrings of its middleware class name, to recognise it
    #: in the chassis base (where it is then always on).
    base_markers: tuple[str, ...] = ()


COMPONENTS: tuple[Component, ...] = (
    Component("request_id", "request id", (("request_id", "enabled", True, False),)),
    Component(
        "security_headers", "security headers", (("security_headers", "enabled", True, False),)
    ),
    Component(
        "body_limit",
        "body limit",
        (("body_limit", "enabled", True, False),),
        (("body_limit", "max_bytes", BODY_LIMIT),),
    ),
    Component(
        "error_boundary",
        "error boundary",
        (("errors", "boundary", True, False),),
        base_markers=("ErrorBoundary", "error_boundary"),
    ),
    Component(
        "access_log",
        "access log",
        (("logging", "access_log", True, False),),
        (("logging", "json_output", True),),
    ),
    Component("metrics", "metrics", (("metrics", "enabled", True, False),)),
    Component(
        "rate_limit",
        "rate limit (memory)",
        (("rate_limit", "enabled", True, False),),
        (("rate_limit", "default", "1000000000/second"),),
    ),
    Component(
        "tracing",
        "tracing (no exporter)",
        (("tracing", "enabled", True, False),),
        (("tracing", "exporter", "none"), ("tracing", "sample_ratio", 1.0)),
    ),
)
COMPONENTS_BY_NAME = {c.name: c for c in COMPONENTS}
CORE = ("request_id", "security_headers", "body_limit", "error_boundary")
FULL_DEFAULT = (*CORE, "access_log", "metrics")


def _group_fields(group: str) -> set[str] | None:
    from fastapi_chassis import ChassisSettings

    info = ChassisSettings.model_fields.get(group)
    if info is None:
        return None
    annotation = info.annotation
    fields = getattr(annotation, "model_fields", None)
    return set(fields) if fields is not None else None


def component_missing(name: str) -> str | None:
    """Why the component cannot be switched on this build, or None when its settings exist."""
    component = COMPONENTS_BY_NAME[name]
    for group, field_name, _, _ in component.switches:
        fields = _group_fields(group)
        if fields is None or field_name not in fields:
            return f"no setting {group}.{field_name}"
    return None


def chassis_settings_data(enabled: Iterable[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Settings data with exactly `enabled` components on (where they exist), and notes."""
    on = set(enabled)
    data: dict[str, dict[str, Any]] = {}
    notes: list[str] = []

    def put(group: str, name: str, value: Any) -> None:
        fields = _group_fields(group)
        if fields is not None and name in fields:
            data.setdefault(group, {})[name] = value

    for component in COMPONENTS:
        missing = component_missing(component.name)
        if missing is not None:
            if component.name in on:
                notes.append(f"{component.label}: cannot be switched here ({missing})")
            continue
        wanted = component.name in on
        for group, name, on_value, off_value in component.switches:
            put(group, name, on_value if wanted else off_value)
        if wanted:
            for group, name, value in component.extras:
                put(group, name, value)
    put("auth", "algorithm", "HS256")
    put("auth", "jwt_secret", JWT_SECRET)
    return data, notes


def _chassis_subject_dependency() -> Callable[..., Any] | None:
    """The chassis' own authenticated-principal dependency, when the auth block exists."""
    import fastapi_chassis

    for name in ("CurrentPrincipal", "CurrentUser"):
        alias = getattr(fastapi_chassis, name, None)
        if alias is None:
            continue
        metadata = getattr(alias, "__metadata__", ())
        dependency = next((m.dependency for m in metadata if hasattr(m, "dependency")), None)
        if dependency is None:
            continue

        async def subject(principal: Annotated[Any, Depends(dependency)]) -> str:
            for attr in ("subject", "sub"):
                value = getattr(principal, attr, None)
                if value is not None:
                    return str(value)
            if isinstance(principal, dict):
                return str(principal["sub"])
            return str(principal)

        return subject
    return None


def _build_chassis(enabled: Iterable[str], fillers: int, auth: str) -> Built:
    from fastapi_chassis import ChassisSettings, build_app

    data, notes = chassis_settings_data(enabled)
    settings = ChassisSettings(_env_file=None, environment="staging", **data)
    app = build_app(settings)
    dependency = _chassis_subject_dependency() if auth == "auto" else None
    mint = make_token
    if dependency is None:
        dependency = pyjwt_subject
        notes.append("/me: plain pyjwt dependency (no chassis auth used)")
    else:
        notes.append("/me: chassis auth")
        mint = _chassis_minter(app)
    add_filler_routes(app, fillers)
    add_routes(app, dependency)
    return Built(app, notes, mint)


def _chassis_minter(app: FastAPI) -> Callable[[], str]:
    """Tokens signed by the app's own token service when the chassis offers a way to mint them."""
    try:
        from fastapi_chassis.testing import mint_token
    except ImportError:
        return make_token

    def mint() -> str:
        return str(mint_token(app, JWT_SUBJECT, ["items:read"]))

    return mint


def fingerprint(app: FastAPI) -> dict[str, Any]:
    """What the chassis wired: compared against the base to tell a wired block from a no-op."""
    middleware = []
    for m in app.user_middleware:
        cls = getattr(m, "cls", m)
        middleware.append(getattr(cls, "__qualname__", None) or repr(cls))
    chassis = getattr(app.state, "chassis", None)
    return {
        "middleware": middleware,
        "routes": [getattr(r, "path", repr(r)) for r in app.router.routes],
        "handlers": sorted(repr(k) for k in app.exception_handlers),
        "resources": len(getattr(chassis, "resources", ())),
        "extensions": sorted(getattr(chassis, "extensions", {})),
        "stack_override": "build_middleware_stack" in vars(app),
    }
