"""The error boundary: unhandled exceptions become a 500 problem+json inside the middleware stack.

Starlette's `ServerErrorMiddleware` sits outside every user middleware, so a 500 it renders
never passes the request-id, security-header or CORS middleware, and it re-raises so the server
logs the traceback as well. The boundary is the innermost chassis middleware, inside all
the decorating ones and outside the app's own:

- exceptions that have a registered handler (`ChassisError`, `HTTPException`, ...) but were
  raised by middleware outside Starlette's `ExceptionMiddleware` are rendered by that handler;
- anything else is logged once, with the request id, and answered with a 500 whose body hides
  the exception unless `debug` is on in dev/test. The exception is not re-raised: it has been
  logged and answered, and re-raising would make the server log it again;
- when the response has already started (a streaming body failed half-way) nothing more is
  sent: the error is logged and the boundary returns without finishing the body, so the server
  closes the connection and the client sees a broken response, not one that looks complete.
"""

from __future__ import annotations

import functools
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis._chassis import Chassis
from fastapi_chassis._context import get_request_id
from fastapi_chassis._error_handlers import last_resort_handler, status_code_name, status_title
from fastapi_chassis.errors import _type_base_var, problem_body, problem_response

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger("fastapi_chassis.errors")

Handler = Callable[[Request, Exception], Any]
#: Called once for each exception the boundary logs (e.g. to record it on a trace span).
ErrorObserver = Callable[[Exception, Scope], None]

#: Key in `chassis.extensions` of the list of `ErrorObserver`s; blocks append to it in install().
ERROR_OBSERVERS = "errors.observers"

_NOT_STARTED, _STARTED, _SENT = 0, 1, 2

GENERIC_DETAIL = "The server could not complete the request."


class ErrorBoundaryMiddleware:
    """Pure ASGI middleware turning every exception from the app into one logged problem."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        handlers: Mapping[Any, Handler],
        expose_details: bool = False,
        observers: Sequence[ErrorObserver] = (),
    ) -> None:
        self.app = app
        self.observers = tuple(observers)
        # Read when the middleware stack is built, after every handler has been registered.
        self.class_handlers = {
            key: handler
            for key, handler in handlers.items()
            if isinstance(key, type) and key is not Exception
        }
        # As in Starlette, `Exception` and `500` name the server-error handler, not a status one.
        self.status_handlers = {
            key: handler for key, handler in handlers.items() if isinstance(key, int) and key != 500
        }
        own = handlers.get(Exception) or handlers.get(500)
        self.server_error_handler = None if own is last_resort_handler else own
        self.expose_details = expose_details

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        progress = _NOT_STARTED

        def send_tracking_progress(message: Message) -> Awaitable[None]:
            nonlocal progress
            if message["type"] == "http.response.start":
                progress = _STARTED
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                progress = _SENT
            return send(message)

        try:
            await self.app(scope, receive, send_tracking_progress)
        except Exception as exc:
            await self._handle(exc, progress, scope, receive, send)

    async def _handle(
        self, exc: Exception, progress: int, scope: Scope, receive: Receive, send: Send
    ) -> None:
        method, path = scope.get("method", "?"), scope.get("path", "?")
        request_id = get_request_id()
        if isinstance(exc, ClientDisconnect):
            logger.info(
                "client disconnected during %s %s (request_id=%s)", method, path, request_id
            )
            return
        if progress != _NOT_STARTED:
            # Too late for an error response: say what the client got, log, send nothing more.
            outcome = (
                "after the response was sent"
                if progress == _SENT
                else "after the response started; the connection will be closed"
            )
            logger.error(
                "exception on %s %s %s (request_id=%s)",
                method,
                path,
                outcome,
                request_id,
                exc_info=exc,
            )
            self._notify(exc, scope)
            return
        request = Request(scope, receive)
        handler = self._handler_for(exc)
        response: Response | None = None
        if handler is not None:
            response = await self._call(handler, request, exc)
        if response is None:
            logger.error(
                "unhandled exception on %s %s (request_id=%s)",
                method,
                path,
                request_id,
                exc_info=exc,
            )
            self._notify(exc, scope)
            if self.server_error_handler is not None:
                response = await self._call(self.server_error_handler, request, exc)
            if response is None:
                response = self._server_error(exc, request_id)
        await response(scope, receive, send)

    def _notify(self, exc: Exception, scope: Scope) -> None:
        for observer in self.observers:
            try:
                observer(exc, scope)
            except Exception:
                logger.exception("error observer %r failed", observer)

    def _handler_for(self, exc: Exception) -> Handler | None:
        if isinstance(exc, HTTPException) and exc.status_code in self.status_handlers:
            return self.status_handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self.class_handlers:
                return self.class_handlers[cls]
        return None

    async def _call(self, handler: Handler, request: Request, exc: Exception) -> Response | None:
        try:
            if _is_async(handler):
                result = await handler(request, exc)
            else:
                result = await run_in_threadpool(handler, request, exc)
        except Exception:
            # A handler that fails leaves the original exception to the 500 path, which logs it.
            logger.exception("exception handler %r failed", handler)
            return None
        return result if isinstance(result, Response) else None

    def _server_error(self, exc: Exception, request_id: str | None) -> Response:
        detail = GENERIC_DETAIL
        if request_id is not None:
            detail += " Quote the request id when reporting it."
        extra: dict[str, Any] | None = None
        if self.expose_details:
            detail = f"{type(exc).__name__}: {exc}"
            extra = {
                "exception": {
                    "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "message": str(exc),
                    "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__),
                }
            }
        body = problem_body(
            500, title=status_title(500), code=status_code_name(500), detail=detail, extra=extra
        )
        return problem_response(body)


def _is_async(handler: Handler) -> bool:
    target = handler.func if isinstance(handler, functools.partial) else handler
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(type(target).__call__)


class ProblemTypeBaseMiddleware:
    """Make `errors.type_base_url` the base of every problem `type` built during a request.

    Outermost of the chassis stack, so middleware that answer early build the same `type`s as
    the exception handlers. Added only when a base is configured.
    """

    def __init__(self, app: ASGIApp, *, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _type_base_var.set(self.base_url)
        try:
            await self.app(scope, receive, send)
        finally:
            _type_base_var.reset(token)


def install_error_boundary(app: FastAPI, chassis: Chassis) -> None:
    """Add the boundary as the innermost chassis middleware (call after every other block).

    The boundary reads the app's handlers and the `ERROR_OBSERVERS` list when the middleware
    stack is built, so handlers and observers added after `install()` but before serving count.
    """
    settings = chassis.settings
    observers: list[ErrorObserver] = chassis.extensions.setdefault(ERROR_OBSERVERS, [])
    chassis.outer_middleware.append(
        Middleware(
            ErrorBoundaryMiddleware,
            handlers=app.exception_handlers,
            expose_details=settings.debug and settings.environment in ("dev", "test"),
            observers=observers,
        )
    )
    if settings.errors.type_base_url:
        chassis.outer_middleware.insert(
            0, Middleware(ProblemTypeBaseMiddleware, base_url=settings.errors.type_base_url)
        )
