"""Exception handlers that render every handled error as problem+json.

Registered by `install_error_handlers()`; they run inside Starlette's `ExceptionMiddleware`
(just outside the router). The error boundary reuses them for the same exceptions raised by
middleware, which sit outside that point.
"""

from __future__ import annotations

import http
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fastapi_chassis._chassis import Chassis
from fastapi_chassis.errors import ChassisError, problem_body, problem_response
from fastapi_chassis.settings import ErrorsSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

#: Stable codes for the statuses FastAPI, Starlette and users raise as `HTTPException`.
#: Fixed here rather than derived from `http.HTTPStatus` phrases, which change between Pythons.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    410: "gone",
    411: "length_required",
    412: "precondition_failed",
    413: "content_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    417: "expectation_failed",
    421: "misdirected_request",
    422: "unprocessable_entity",
    423: "locked",
    424: "failed_dependency",
    425: "too_early",
    426: "upgrade_required",
    428: "precondition_required",
    429: "rate_limited",
    431: "headers_too_large",
    451: "unavailable_for_legal_reasons",
    500: "internal_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

VALIDATION_CODE = "validation_failed"
VALIDATION_TITLE = "Request validation failed"
REDACTED_MSG = "Invalid value"


def status_code_name(status: int) -> str:
    """The stable `code` of a bare HTTP status."""
    return STATUS_CODES.get(status, f"http_{status}")


def status_title(status: int) -> str:
    """The reason phrase of `status` (`Error` for statuses Python does not know)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def chassis_error_handler(request: Request, exc: Exception) -> Response:
    """Render a `ChassisError` (or subclass) with its status, code, title, extra and headers."""
    if not isinstance(exc, ChassisError):  # registered for ChassisError only
        raise exc
    body = problem_body(
        exc.status_code,
        title=exc.error_title,
        code=exc.error_code,
        detail=exc.detail,
        extra=jsonable_encoder(exc.extra) if exc.extra else None,
    )
    return problem_response(body, exc.headers or None)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Render Starlette's and FastAPI's `HTTPException`, keeping its status and headers.

    Unknown routes (404) and wrong methods (405, with `Allow`) arrive here from the router. A
    non-string `detail` (FastAPI allows any JSON) is kept under the `context` member.
    """
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    status = exc.status_code
    if status < 400:
        # Redirects and other non-errors raised as exceptions keep FastAPI's own rendering.
        return await http_exception_handler(request, exc)
    title = status_title(status)
    detail: str | None = exc.detail
    extra: dict[str, Any] | None = None
    if not isinstance(detail, str):
        extra = {"context": jsonable_encoder(detail)}
        detail = None
    elif detail == title:
        detail = None
    body = problem_body(
        status, title=title, code=status_code_name(status), detail=detail, extra=extra
    )
    return problem_response(body, exc.headers)


def pointer(loc: Sequence[Any]) -> str:
    """A JSON pointer (RFC 6901) from a pydantic/FastAPI error location."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def field_errors(errors: Iterable[Any], redact: Sequence[str]) -> list[dict[str, str]]:
    """`{loc, msg, type}` items; never the submitted input, `msg` generic on redacted fields."""
    items: list[dict[str, str]] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        kind = str(error.get("type", "value_error"))
        if kind == "json_invalid" and loc[:1] == ["body"]:
            # FastAPI appends the decoder's character offset; it is not a field.
            loc = loc[:1]
        msg = str(error.get("msg", REDACTED_MSG))
        if any(isinstance(p, str) and any(r in p.lower() for r in redact) for p in loc):
            msg = REDACTED_MSG
        items.append({"loc": pointer(loc), "msg": msg, "type": kind})
    return items


def validation_error_handler(
    redact_fields: Sequence[str],
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A `RequestValidationError` handler that redacts `redact_fields` (case-insensitive)."""
    redact = tuple(field.lower() for field in redact_fields)

    async def handler(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError):  # registered for it only
            raise exc
        errors = field_errors(exc.errors(), redact)
        noun = "input is" if len(errors) == 1 else "inputs are"
        body = problem_body(
            422,
            title=VALIDATION_TITLE,
            code=VALIDATION_CODE,
            detail=f"{len(errors)} {noun} invalid; see `errors`.",
            extra={"errors": errors},
        )
        return problem_response(body)

    return handler


async def last_resort_handler(request: Request, exc: Exception) -> Response:
    """500 for errors raised outside the error boundary (Starlette's `ServerErrorMiddleware`).

    It only renders: that middleware re-raises afterwards, so the server logs the traceback.
    """
    body = problem_body(
        500,
        title=status_title(500),
        code=status_code_name(500),
        detail="The server could not complete the request.",
    )
    return problem_response(body)


def register_handlers(app: FastAPI) -> None:
    """Register the handlers, keeping any the app registered itself.

    FastAPI's own defaults for `HTTPException` and `RequestValidationError` are replaced; a
    handler the service wrote for them (or for `ChassisError`, `Exception`, `500`) stays.
    """
    chassis = getattr(app.state, "chassis", None)
    errors = chassis.settings.errors if isinstance(chassis, Chassis) else ErrorsSettings()
    ours: dict[Any, Any] = {
        ChassisError: chassis_error_handler,
        HTTPException: http_error_handler,
        RequestValidationError: validation_error_handler(errors.redact_fields),
    }
    replaceable = {None, http_exception_handler, request_validation_exception_handler}
    for key, handler in ours.items():
        if app.exception_handlers.get(key) in replaceable:
            app.add_exception_handler(key, handler)
    if Exception not in app.exception_handlers and 500 not in app.exception_handlers:
        app.add_exception_handler(Exception, last_resort_handler)
