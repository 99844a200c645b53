"""Per-request context shared by the building blocks (request id, authenticated subject).

Kept in a private module so `errors`, logging and middleware can read the current request
without importing each other.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("fastapi_chassis_request_id", default=None)

#: The authenticated subject (e.g. the JWT `sub`) of the current request, once auth knows it.
#: Set by the auth dependencies; log lines carry it as `subject`.
subject_var: ContextVar[str | None] = ContextVar("fastapi_chassis_subject", default=None)


def get_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return request_id_var.get()
