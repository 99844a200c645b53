"""Request body limit: reject oversized bodies early, count the bytes that really arrive.

Builds on the scope protocol of Starlette's `RequestBodyLimitMiddleware` where it exists: the
limit in force is published under the `starlette.max_body_size` scope key, so FastAPI's own
`max_body_size=` on a router or route (recent releases) nests inside the chassis limit. On older
releases the same behaviour comes from the chassis alone, with `body_limit()` declaring a route's
own limit. Whichever layer detects an oversized body, the client gets one 413 problem+json with
`Connection: close` (so the server does not drain the rest of the upload).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeVar

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis._chassis import Chassis
from fastapi_chassis._error_boundary import _NOT_STARTED, _SENT, _STARTED, ErrorBoundaryMiddleware
from fastapi_chassis._scope import HEADER_NAME
from fastapi_chassis._send import nothing
from fastapi_chassis.errors import ConfigurationError
from fastapi_chassis.middleware._problem import send_problem

__all__ = [
    "MAX_BODY_SIZE_SCOPE_KEY",
    "BodyLimitMiddleware",
    "ContentTooLarge",
    "body_limit",
    "install_body_limit",
]

try:  # Starlette >= 1.x publishes the limit in force under this key.
    from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
except ImportError:  # pragma: no cover - depends on the installed Starlette
    MAX_BODY_SIZE_SCOPE_KEY = "starlette.max_body_size"  # type: ignore[misc, unused-ignore]

_ROUTE_LIMIT: Final = "__chassis_body_limit__"
_UNSET: Final = object()
_CLOSE = [(b"connection", b"close")]
# 19 digits already exceed any size a server could accept; longer numbers are "huge", not "bad".
_MAX_DIGITS = 19

F = TypeVar("F", bound=Callable[..., Any])
Header = tuple[bytes, bytes]


class ContentTooLarge(HTTPException):
    """Raised by `receive()` once a request body is known to exceed its limit.

    It is an `HTTPException` so FastAPI's body parsing lets it through unchanged (anything else
    becomes a 400 "error parsing the body"); `BodyLimitMiddleware` turns it into the 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")
        self.limit = limit


class _Malformed(Exception):
    pass


def _check_limit(max_bytes: int | None, what: str) -> None:
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0
    ):
        raise ConfigurationError(
            f"{what} is {max_bytes!r}; use a whole number of bytes >= 0, or None for no limit"
        )


def body_limit(max_bytes: int | None) -> Callable[[F], F]:
    """Route decorator: this endpoint's body limit in bytes (`None`: unlimited).

    Put it on the endpoint function, next to the route decorator:

        @app.post("/uploads")
        @body_limit(50 * 1024 * 1024)
        async def upload(request: Request) -> dict[str, int]: ...

    It overrides the global limit in both directions and works on every supported FastAPI
    release. Raises `ConfigurationError` for a negative or non-integer limit.
    """
    _check_limit(max_bytes, "body_limit(max_bytes)")

    def decorate(endpoint: F) -> F:
        setattr(endpoint, _ROUTE_LIMIT, max_bytes)
        return endpoint

    return decorate


def _declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The request's Content-Length; raises `_Malformed` for non-numbers or conflicting values."""
    if isinstance(headers, list):
        # The usual cases, found by scans that run in C: no Content-Length, or one plain number.
        names = list(map(HEADER_NAME, headers))
        count = names.count(b"content-length")
        if count == 0:
            return None
        if count == 1:
            value = headers[names.index(b"content-length")][1]
            if value.isdigit() and len(value) <= _MAX_DIGITS:
                return int(value)
    declared: int | None = None
    for name, value in headers:
        if name != b"content-length":
            continue
        for part in value.split(b","):
            digits = part.strip(b" \t")
            if not digits.isdigit():  # bytes.isdigit: ASCII 0-9 only; rejects -1, 1e9, ""
                raise _Malformed
            digits = digits.lstrip(b"0") or b"0"
            length = int(digits) if len(digits) <= _MAX_DIGITS else 1 << 64
            if declared is not None and declared != length:
                raise _Malformed
            declared = length
    return declared


def _limit_error(exc: BaseException) -> ContentTooLarge | None:
    """The `ContentTooLarge` behind `exc` (itself, a cause/context, or in an exception group)."""
    seen = 0
    stack: list[BaseException] = [exc]
    while stack and seen < 32:
        current = stack.pop()
        seen += 1
        if isinstance(current, ContentTooLarge):
            return current
        grouped = getattr(current, "exceptions", None)  # (Base)ExceptionGroup, any backport
        if isinstance(grouped, tuple):
            stack.extend(e for e in grouped if isinstance(e, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return None


class _Limited:
    """One request under a `BodyLimitMiddleware`: the bytes received, how far the response got.

    The app gets `receive` and `send`. `decorate` (set by the fused `CoreMiddleware`) rewrites
    the response headers as they start, on the app's response and on the limit's own answers.
    """

    __slots__ = (
        "_receive",
        "_send",
        "declared",
        "decorate",
        "exceeded",
        "limiter",
        "previous",
        "progress",
        "received",
        "replaced",
        "scope",
    )

    def __init__(
        self,
        limiter: BodyLimitMiddleware,
        scope: Scope,
        receive: Receive,
        send: Send,
        declared: int | None,
        decorate: Callable[[Message], list[Header]] | None,
    ) -> None:
        self.limiter = limiter
        self.scope = scope
        self._receive = receive
        self._send = send
        self.declared = declared
        self.decorate = decorate
        self.previous: object = _UNSET  # the limit in the scope before ours
        self.received = 0
        self.exceeded = False  # the app was told the body is too large
        self.replaced = False  # the app's response was replaced by the 413
        self.progress = _NOT_STARTED  # how far the response got (the boundary needs it too)

    async def receive(self) -> Message:
        if self.exceeded:  # the app was told once; after that the client is gone for it
            return {"type": "http.disconnect"}
        limit = self.limiter._limit(self.scope)
        declared = self.declared
        if limit is not None and declared is not None and declared > limit:
            self.exceeded = True
            raise ContentTooLarge(limit)
        message = await self._receive()
        if limit is not None and message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > limit:
                self.exceeded = True
                raise ContentTooLarge(limit)
        return message

    def send(self, message: Message) -> Awaitable[None]:
        kind = message["type"]
        if kind == "http.response.start":
            self.progress = _STARTED
            if self.replaced:
                return nothing()
            declared = self.declared
            # Bodyless requests (no declared length, nothing exceeded) skip the lookup.
            if self.exceeded or declared is not None:
                limit = self.limiter._limit(self.scope)
                if self.exceeded or (
                    limit is not None and declared is not None and declared > limit
                ):
                    self.replaced = True
                    return self.limiter._send_413(self.answers(), limit)
            if self.decorate is not None:
                message["headers"] = self.decorate(message)
        elif kind == "http.response.body" and not message.get("more_body"):
            self.progress = _SENT
        if self.replaced:
            return nothing()
        return self._send(message)

    def answers(self) -> Send:
        """The `send` for the limit's own responses: the server's, decorated like the app's."""
        return self._send if self.decorate is None else decorating(self._send, self.decorate)


def decorating(send: Send, decorate: Callable[[Message], list[Header]]) -> Send:
    """`send` with the response headers replaced by `decorate(message)` as the response starts."""

    def send_decorated(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            message["headers"] = decorate(message)
        return send(message)

    return send_decorated


class BodyLimitMiddleware:
    """Limit request bodies to `max_bytes` (default 1 MiB; `None`: no global limit).

    - A declared `Content-Length` over the limit in force fails the app's first `receive()`,
      so FastAPI answers before the handler runs; a response started without reading the body
      is replaced by the 413.
    - Bodies without `Content-Length` (chunked) or with a lying one are counted as they arrive;
      the `receive()` that crosses the limit raises `ContentTooLarge`, so the app never holds
      more than the limit plus one chunk.
    - A malformed `Content-Length` (not a decimal number, or duplicates that disagree) is a
      400 problem+json before the app runs.
    """

    #: The error boundary run inside this layer, when `install()` fused the two (see
    #: `_bounded`); None: the app is called directly.
    _boundary: ErrorBoundaryMiddleware | None = None

    def __init__(self, app: ASGIApp, *, max_bytes: int | None = 1024 * 1024) -> None:
        _check_limit(max_bytes, "BodyLimitMiddleware(max_bytes) (CHASSIS_BODY_LIMIT__MAX_BYTES)")
        self.app = app
        self.max_bytes = max_bytes

    def _limit(self, scope: Scope) -> int | None:
        endpoint = scope.get("endpoint")
        if endpoint is not None:
            declared = getattr(endpoint, _ROUTE_LIMIT, _UNSET)
            if declared is not _UNSET:
                return declared  # type: ignore[return-value]
        limit: int | None = scope.get(MAX_BODY_SIZE_SCOPE_KEY, self.max_bytes)
        return limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            request = self._open(scope, receive, send)
        except _Malformed:
            await self._send_400(send)
            return
        try:
            await self.app(scope, request.receive, request.send)
        except Exception as exc:
            await self._fail(request, exc)
        finally:
            self._close(request)

    def _open(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        decorate: Callable[[Message], list[Header]] | None = None,
    ) -> _Limited:
        """Start one request under this limit; raises `_Malformed` for a bad Content-Length.

        `__call__` and the fused `CoreMiddleware` run the app between `_open()` and `_close()`,
        with `_fail()` for what it raises.
        """
        declared = _declared_length(scope["headers"])
        request = _Limited(self, scope, receive, send, declared, decorate)
        request.previous = scope.get(MAX_BODY_SIZE_SCOPE_KEY, _UNSET)
        if self.max_bytes is not None:
            scope[MAX_BODY_SIZE_SCOPE_KEY] = self.max_bytes
        return request

    async def _fail(self, request: _Limited, exc: Exception) -> None:
        """What the app raised: the fused boundary answers it, else a 413 if over the limit."""
        boundary = self._boundary
        if boundary is not None:
            # As `ErrorBoundaryMiddleware(app)` inside this layer, minus its own wrapper:
            # `request.send` tracks how far the response got for it.
            try:
                await boundary._handle(
                    exc, request.progress, request.scope, request.receive, request.send
                )
                return
            except Exception as again:
                exc = again
        error = _limit_error(exc)
        if error is None or (request.progress != _NOT_STARTED and not request.replaced):
            raise exc
        if request.progress == _NOT_STARTED:
            await self._send_413(request.answers(), error.limit)

    @staticmethod
    def _close(request: _Limited) -> None:
        scope = request.scope
        if request.previous is _UNSET:
            scope.pop(MAX_BODY_SIZE_SCOPE_KEY, None)
        else:
            scope[MAX_BODY_SIZE_SCOPE_KEY] = request.previous

    @staticmethod
    async def _send_400(send: Send) -> None:
        await send_problem(
            send,
            400,
            title="Bad Request",
            code="invalid_content_length",
            detail="Content-Length must be one non-negative decimal number",
            headers=_CLOSE,
        )

    @staticmethod
    async def _send_413(send: Send, limit: int | None) -> None:
        detail = (
            f"the request body exceeds the limit of {limit} bytes"
            if limit is not None
            else "the request body is too large"
        )
        await send_problem(
            send,
            413,
            title="Content Too Large",
            code="content_too_large",
            detail=detail,
            headers=_CLOSE,
        )


def install_body_limit(app: FastAPI, chassis: Chassis) -> None:
    """Add `BodyLimitMiddleware` and the form limits from `settings.body_limit`.

    Raises:
        ConfigurationError: `FastAPI(max_body_size=...)` is set too (its 413 is plain text
            and answered outside the chassis middleware), or form limits are set on a FastAPI
            release without `form_limits`.
    """
    settings = chassis.settings
    config = settings.body_limit
    if not config.enabled:
        return
    if getattr(app, "max_body_size", None) is not None:
        raise ConfigurationError(
            "FastAPI(max_body_size=...) answers 413 as plain text outside the chassis "
            "middleware; remove it and set "
            f"{settings.env_var('body_limit', 'max_bytes')} instead (route-level "
            "max_body_size= and body_limit() keep working)"
        )
    chassis.add_middleware(BodyLimitMiddleware, max_bytes=config.max_bytes)
    form_limits = {
        key: value
        for key, value in (
            ("max_fields", config.max_form_fields),
            ("max_files", config.max_form_files),
            ("max_part_size", config.max_form_part_size),
        )
        if value is not None
    }
    if not form_limits:
        return
    current = getattr(app.router, "form_limits", None)
    if not isinstance(current, dict):
        names = ", ".join(
            settings.env_var("body_limit", f"max_form_{key.removeprefix('max_')}")
            for key in form_limits
        )
        raise ConfigurationError(
            f"{names}: this FastAPI release has no form_limits; upgrade FastAPI or unset them"
        )
    # Limits the app set itself win over the settings.
    router: Any = app.router
    router.form_limits = {**form_limits, **current}
