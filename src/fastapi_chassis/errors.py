"""The error envelope: RFC 9457 problem details and the `ChassisError` family.

Every error the chassis answers with is `application/problem+json`. Raise a `ChassisError`
subclass from a handler, a dependency or a service; define your own with one short class:

    class InsufficientFunds(ChassisError):
        status = 402
        code = "insufficient_funds"
        title = "Insufficient funds"

`install_error_handlers(app)` (called by `install()`) renders them, FastAPI's and Starlette's
own exceptions, validation failures, unknown routes and wrong methods in the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from fastapi_chassis._context import get_request_id
from fastapi_chassis._counters import count_problem
from fastapi_chassis._trace import current_trace_id

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
    "ProblemFieldError",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "install_error_handlers",
    "problem_body",
    "problem_bytes",
    "problem_response",
    "problem_responses",
    "problem_type",
]

PROBLEM_JSON = "application/problem+json"

#: Base URI of problem `type`s for the request being served; set by the outermost chassis
#: middleware when `errors.type_base_url` is configured, so every `problem_body()` agrees on it.
_type_base_var: ContextVar[str | None] = ContextVar("fastapi_chassis_type_base", default=None)


class ProblemFieldError(BaseModel):
    """One invalid input of a validation failure (the items of `ProblemDetail.errors`)."""

    loc: str = Field(
        description="JSON pointer to the input: its source (body, query, path, header, cookie) "
        "then the path inside it, e.g. `/body/items/0/qty` or `/query/limit`."
    )
    msg: str = Field(description="Human-readable explanation; never contains the input.")
    type: str = Field(description="Stable, machine-readable kind of failure, e.g. `int_parsing`.")


class ProblemDetail(BaseModel):
    """An RFC 9457 problem details object, with the chassis' extension members.

    Subclass-specific members (a `ChassisError`'s `extra`) appear as additional properties.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        default="about:blank",
        description="URI identifying the problem type: `errors.type_base_url` + `code`, "
        "or `about:blank`.",
    )
    title: str = Field(description="Short, human-readable summary of the problem type.")
    status: int = Field(description="The HTTP status code of this response.")
    detail: str | None = Field(default=None, description="Explanation of this occurrence.")
    instance: str | None = Field(default=None, description="URI of this occurrence.")
    code: str = Field(description="Stable, machine-readable error code; branch on this.")
    request_id: str | None = Field(
        default=None, description="Id of the request that failed; quote it in bug reports."
    )
    trace_id: str | None = Field(
        default=None, description="OpenTelemetry trace id of the request, when it was traced."
    )
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="The invalid inputs, on validation failures (422)."
    )


class ChassisError(Exception):
    """Base of every error the chassis raises or renders as problem+json.

    Class attributes give a subclass its defaults; constructor arguments override them for one
    occurrence. `extra` members are added to the problem body (they never replace the standard
    members); `headers` are added to the response.
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal Server Error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not 400 <= cls.status <= 599:
            raise TypeError(
                f"{cls.__name__}.status is {cls.status}; an error status must be 400-599"
            )

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
        if not 400 <= self.status_code <= 599:
            raise ValueError(f"status is {self.status_code}; an error status must be 400-599")
        self.error_code = code if code is not None else type(self).code
        self.error_title = title if title is not None else type(self).title
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = dict(extra or {})


class ConfigurationError(ChassisError):
    """Settings or wiring that cannot work; raised at startup, never per request."""

    code = "configuration_error"
    title = "Configuration error"


class BadRequest(ChassisError):
    """400: the request is malformed in a way validation did not catch."""

    status = 400
    code = "bad_request"
    title = "Bad Request"


class Unauthorized(ChassisError):
    """401: missing or invalid credentials (add a `WWW-Authenticate` header)."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(ChassisError):
    """403: authenticated, but not allowed to do this."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(ChassisError):
    """404: the resource does not exist (or the caller may not know it does)."""

    status = 404
    code = "not_found"
    title = "Not Found"


class Conflict(ChassisError):
    """409: the request conflicts with the resource's current state."""

    status = 409
    code = "conflict"
    title = "Conflict"


class Gone(ChassisError):
    """410: the resource existed and was removed for good."""

    status = 410
    code = "gone"
    title = "Gone"


class UnprocessableEntity(ChassisError):
    """422: well-formed input that breaks a business rule."""

    status = 422
    code = "unprocessable_entity"
    title = "Unprocessable Entity"


class TooManyRequests(ChassisError):
    """429: slow down (add a `Retry-After` header)."""

    status = 429
    code = "rate_limited"
    title = "Too Many Requests"


class ServiceUnavailable(ChassisError):
    """503: a dependency is down or the service is draining (add `Retry-After`)."""

    status = 503
    code = "service_unavailable"
    title = "Service Unavailable"


def problem_type(code: str) -> str:
    """The `type` URI of `code` for the current request: `type_base_url` + code, or about:blank."""
    base = _type_base_var.get()
    if not base:
        return "about:blank"
    return f"{base.rstrip('/')}/{code}"


def problem_body(
    status: int,
    *,
    title: str,
    code: str,
    detail: str | None = None,
    type_: str | None = None,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A problem details dict; `type` defaults to `problem_type(code)`; `request_id` and
    `trace_id` are the current request's (when it has them)."""
    body: dict[str, Any] = {
        "type": type_ if type_ is not None else problem_type(code),
        "title": title,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body["code"] = code
    request_id = get_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    trace_id = current_trace_id()
    if trace_id is not None:
        body["trace_id"] = trace_id
    count_problem(code)
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


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json answers for `statuses`.

    `@app.get("/items/{id}", responses=problem_responses(404, 409))`. The schema they reference
    is added to the document by `install()`.
    """
    from fastapi_chassis._openapi_problems import responses_for

    return responses_for(statuses)


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json exception handlers on `app` and document them in OpenAPI.

    `install()` calls it and also adds the error boundary middleware; call it yourself only when
    wiring blocks one by one.
    """
    from fastapi_chassis._error_handlers import register_handlers
    from fastapi_chassis._openapi_problems import document_problems

    register_handlers(app)
    document_problems(app)
