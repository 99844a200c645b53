"""Running an app under the access log and/or metrics: the per-request bookkeeping, once.

`AccessLogMiddleware` and the fused `CoreMiddleware` both call `observe()`; the latter also
passes `decorate`, which rewrites the response headers (security headers, request id) as
they start, so the log and metrics see what the client gets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi_chassis.middleware.access_log import AccessLogMiddleware
    from fastapi_chassis.observability.metrics import MetricsMiddleware

Header = tuple[bytes, bytes]


async def observe(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    path: str,
    access: AccessLogMiddleware | None,
    metrics: MetricsMiddleware | None = None,
    decorate: Callable[[Message], list[Header]] | None = None,
) -> None:
    """Run `app`, logging one access line (`access`) and recording metrics (`metrics`).

    The line is written when the last body byte has been handed to the server, or when the
    request ends without a complete response (see `AccessLogMiddleware._log_incomplete`).
    """
    root_path: str = scope.get("root_path", "")
    status = 0
    sent = 0
    logged = access is None  # nothing to log counts as logged
    disconnected = False
    response_headers: Iterable[Header] = ()
    log_start = access._clock() if access is not None else 0.0

    async def send_observed(message: Message) -> None:
        nonlocal status, sent, logged, response_headers, disconnected
        kind = message["type"]
        if kind == "http.response.start":
            status = message["status"]
            if decorate is not None:
                message["headers"] = decorate(message)
            response_headers = message.get("headers", ())
        elif kind == "http.response.body":
            sent += len(message.get("body", b""))
        try:
            await send(message)
        except OSError:
            # Servers raise OSError from send once the client is gone (ASGI spec 2.4).
            disconnected = True
            raise
        if logged or access is None:
            return
        if kind == "http.response.body":
            if message.get("more_body", False):
                return
        elif kind == "http.response.pathsend":
            sent = _content_length(response_headers)
        else:
            return
        logged = True
        access._log(scope, root_path, path, status, sent, log_start, disconnected=False)

    receive_app = receive
    if access is not None:

        async def receive_watching() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        receive_app = receive_watching

    if metrics is not None:
        metrics.metrics.started()
    started = perf_counter()
    try:
        await app(scope, receive_app, send_observed)
    except BaseException as exc:
        if not logged and access is not None:
            logged = True
            access._log_incomplete(
                scope, root_path, path, status, sent, log_start, disconnected, exc
            )
        raise
    finally:
        if metrics is not None:
            metrics.metrics.finished()
            metrics._record(scope, root_path, status or 500, perf_counter() - started)
    if not logged and access is not None:
        access._log_incomplete(scope, root_path, path, status, sent, log_start, disconnected)


def _content_length(headers: Iterable[Header]) -> int:
    # A server sends a pathsend file itself; its size is what the app announced.
    for name, value in headers:
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return 0
