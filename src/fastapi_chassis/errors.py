"""The error envelope: RFC 9457 problem details and the `ChassisError` family.

Every error the chassis answers with is `application/problem+json`. Raise a `ChassisError`
subclass from a handler, a dependency or a service; define your own with one short class:

    class InsufficientFunds(ChassisError):
        status = 402
        code = "insufficient_funds"
        title = "Insufficient funds"
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fastapi_chassis._context import get_request_id

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "PROBLEM_JSON",
    "BadRequest",
    "ChassisError",
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "Gone",
    "NotFound",
    "ProblemDetail",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "install_error_handlers",
    "problem_body",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"


class ProblemDetail(BaseModel):
    """An RFC 9457 problem details object, with the chassis' extension members."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="URI identifying the problem type.")
    title: str = Field(description="Short, human-readable summary of the problem type.")
    status: int = Field(description="The HTTP status code of this response.")
    detail: str | None = Field(default=None, description="Explanation of this occurrence.")
    instance: str | None = Field(default=None, description="URI of this occurrence.")
    code: str = Field(description="Stable, machine-readable error code.")
    request_id: str | None = Field(default=None, description="Id of the request that failed.")


class ChassisError(Exception):
    """Base of every error the chassis raises or renders as problem+json.

    Class attributes give a subclass its defaults; constructor arguments override them for one
    occurrence. `extra` members are added to the problem body; `headers` to the response.
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title or type(self).title)
        self.detail = detail
        self.status_code = status if status is not None else type(self).status
        self.error_code = code if code is not None else type(self).code
        self.error_title = title if title is not None else type(self).title
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = dict(extra or {})


class ConfigurationError(ChassisError):
    """Settings or wiring that cannot work; raised at startup, never per request."""

    code = "configuration_error"
    title = "Configuration error"


class BadRequest(ChassisError):
    status = 400
    code = "bad_request"
    title = "Bad Request"


class Unauthorized(ChassisError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(ChassisError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(ChassisError):
    status = 404
    code = "not_found"
    title = "Not Found"


class Conflict(ChassisError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Gone(ChassisError):
    status = 410
    code = "gone"
    title = "Gone"


class UnprocessableEntity(ChassisError):
    status = 422
    code = "unprocessable_entity"
    title = "Unprocessable Entity"


class TooManyRequests(ChassisError):
    status = 429
    code = "rate_limited"
    title = "Too Many Requests"


class ServiceUnavailable(ChassisError):
    status = 503
    code = "service_unavailable"
    title = "Service Unavailable"


def problem_body(
    status: int,
    *,
    title: str,
    code: str,
    detail: str | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A problem details dict; `request_id` is filled from the current request."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body["code"] = code
    request_id = get_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    if extra:
        for key, value in extra.items():
            body.setdefault(key, value)
    return body


def problem_response(
    body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A `application/problem+json` response whose status is the body's `status`."""
    return JSONResponse(
        content=dict(body),
        status_code=int(body["status"]),
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def problem_bytes(body: Mapping[str, Any]) -> bytes:
    """The body encoded for a raw ASGI `send` (middleware that answer before the app)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _problem_type(request: Request, code: str) -> str:
    chassis = getattr(request.app.state, "chassis", None)
    base = chassis.settings.errors.type_base_url if chassis is not None else None
    if not base:
        return "about:blank"
    return f"{base.rstrip('/')}/{code}"


async def _chassis_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChassisError)
    body = problem_body(
        exc.status_code,
        title=exc.error_title,
        code=exc.error_code,
        detail=exc.detail,
        type_=_problem_type(request, exc.error_code),
        extra=exc.extra,
    )
    return problem_response(body, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json exception handlers on `app`."""
    app.add_exception_handler(ChassisError, _chassis_error_handler)
