"""Pure ASGI middleware: request ids, access log, security headers, request body limits.

Each class works alone with `app.add_middleware(...)`; `install()` adds them from settings.
"""

from fastapi_chassis.middleware.access_log import AccessLogMiddleware
from fastapi_chassis.middleware.body_limit import BodyLimitMiddleware, ContentTooLarge, body_limit
from fastapi_chassis.middleware.request_id import (
    RequestId,
    RequestIDMiddleware,
    get_request_id,
    new_request_id,
)
from fastapi_chassis.middleware.security_headers import SecurityHeadersMiddleware

__all__ = [
    "AccessLogMiddleware",
    "BodyLimitMiddleware",
    "ContentTooLarge",
    "RequestIDMiddleware",
    "RequestId",
    "SecurityHeadersMiddleware",
    "body_limit",
    "get_request_id",
    "new_request_id",
]
