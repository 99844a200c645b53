"""Request ids: accept a safe incoming id or mint one, expose it, echo it on every response.

The id is set in a contextvar for the whole request (dependencies, the handler, streaming
generators and background tasks all see it), stored in `request.state.request_id`, and written
to the response header. The contextvar is reset when the request ends, so nothing leaks into
whatever the server runs next on the same task.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable
from contextvars import Token
from typing import Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis._chassis import Chassis
from fastapi_chassis._context import get_request_id, request_id_var, subject_var
from fastapi_chassis._scope import HEADER_NAME
from fastapi_chassis.errors import ConfigurationError

__all__ = [
    "RequestIDMiddleware",
    "RequestId",
    "get_request_id",
    "install_request_id",
    "new_request_id",
]

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


#: The context-variable tokens `_begin()` returns and `_end()` resets (the subject's is None when
#: no subject was set as the request began).
RequestTokens = tuple[Token[str | None], Token[str | None] | None]

_POOL_IDS = 256
# UUIDv7 bytes 6 and 8 (the first and third random byte): version 7 and variant 0b10 bits.
_VERSION = bytes(0x70 | (b & 0x0F) for b in range(256))
_VARIANT = bytes(0x80 | (b & 0x3F) for b in range(256))
# One id's random part as text, `-xxxx-xxxx-xxxxxxxxxxxx`, then a separator to split on; the
# position in it of each of the 20 hex digits of the id's 10 random bytes.
_RECORD = b"-" * 23 + b" "
_DIGIT_AT = tuple(1 + digit + (digit >= 4) + (digit >= 8) for digit in range(20))
_suffixes: list[str] = []
# The current millisecond and its formatted part of the id (`0192a3b4-c5d6`), reused by every id
# minted in that millisecond.
_prefix: tuple[int | None, str] = (None, "")
# A forked worker (gunicorn --preload) must not reuse the parent's unused random parts.
os.register_at_fork(after_in_child=_suffixes.clear)


def _refill() -> None:
    # 256 ids' random parts from one urandom call, version and variant bits set in bulk, and
    # laid out as text by 20 strided copies (one per hex digit), not a Python loop per id.
    data = bytearray(os.urandom(10 * _POOL_IDS))
    data[0::10] = data[0::10].translate(_VERSION)
    data[2::10] = data[2::10].translate(_VARIANT)
    digits = data.hex().encode("ascii")
    records = bytearray(_RECORD * _POOL_IDS)
    for digit, at in enumerate(_DIGIT_AT):
        records[at :: len(_RECORD)] = digits[digit::20]
    _suffixes.extend(records.decode("ascii").split())


def new_request_id() -> str:
    """A fresh UUIDv7 (RFC 9562) string: 48 bits of Unix milliseconds, then 74 random bits.

    Ids minted later sort after earlier ones (to the millisecond); the random part comes from
    the operating system's CSPRNG, so ids cannot be guessed from one another. Random parts are
    drawn from the OS 256 ids at a time (one system call per 256 ids); each is used once.
    """
    global _prefix
    try:
        suffix = _suffixes.pop()  # atomic: threads never share a suffix
    except IndexError:
        _refill()
        return new_request_id()
    millis = time.time_ns() // 1_000_000
    prefix = _prefix  # one tuple, so threads never pair one millisecond with another's text
    if prefix[0] != millis:
        text = f"{millis & 0xFFFF_FFFF_FFFF:012x}"
        prefix = _prefix = (millis, f"{text[:8]}-{text[8:]}")
    return prefix[1] + suffix


class RequestIDMiddleware:
    """Give every request an id: a safe incoming one, or a freshly minted UUIDv7.

    An incoming id is accepted only when `trust_incoming` is on, the header appears exactly
    once, and its value is 1..`max_length` characters of letters, digits and `-_.:`. Anything
    else (control characters, spaces, non-ASCII, too long, empty, repeated) is replaced, never
    echoed. The id is written to the response header of every HTTP response that passes
    through, whatever its status. WebSocket connections get an id in scope state and the
    contextvar; their messages are not touched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header: str = "X-Request-ID",
        trust_incoming: bool = True,
        max_length: int = 128,
    ) -> None:
        if not _HEADER_NAME.fullmatch(header):
            raise ConfigurationError(
                f"request-id header {header!r} is not a valid HTTP header name "
                "(CHASSIS_REQUEST_ID__HEADER; e.g. X-Request-ID)"
            )
        if not 1 <= max_length <= 1024:
            raise ConfigurationError(
                f"request-id max_length is {max_length}; use 1..1024 "
                "(CHASSIS_REQUEST_ID__MAX_LENGTH)"
            )
        self.app = app
        self.header = header.lower().encode("latin-1")
        self.trust_incoming = trust_incoming
        self._valid = re.compile(rb"[A-Za-z0-9\-_.:]{1,%d}" % max_length)

    def _incoming(self, scope: Scope) -> str | None:
        found: bytes | None = None
        for name, value in scope["headers"]:
            if name == self.header:
                if found is not None:
                    return None  # two ids: neither can be believed
                found = value
        if found is not None and self._valid.fullmatch(found):
            return found.decode("ascii")
        return None

    def _begin(self, scope: Scope) -> tuple[str, RequestTokens]:
        """Mint or accept the id, put it in `scope["state"]` and the context; `_end()` undoes."""
        # The incoming id when trusted and safe, else a new one.
        if self.trust_incoming and self.header in map(HEADER_NAME, scope["headers"]):
            request_id = self._incoming(scope) or new_request_id()
        else:
            request_id = new_request_id()
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["request_id"] = request_id
        # The auth dependencies set the subject; `_end` puts back what was there before, so it
        # does not leak into the caller's context when the app runs in the caller's task. It
        # starts as None; a context variable is set only when it was not None already (an app
        # called from inside another request), as setting one costs more than reading it.
        subject = subject_var.set(None) if subject_var.get() is not None else None
        return request_id, (request_id_var.set(request_id), subject)

    @staticmethod
    def _end(tokens: RequestTokens) -> None:
        request, subject = tokens
        if subject is not None:
            subject_var.reset(subject)
        elif subject_var.get() is not None:
            subject_var.set(None)  # None before the request: None again
        request_id_var.reset(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            await self.app(scope, receive, send)
            return
        request_id, tokens = self._begin(scope)
        try:
            if scope_type == "websocket":
                await self.app(scope, receive, send)
                return
            header = self.header
            pair = (header, request_id.encode("ascii"))

            def send_with_id(message: Message) -> Awaitable[None]:
                if message["type"] == "http.response.start":
                    headers = [h for h in message.get("headers", ()) if h[0].lower() != header]
                    headers.append(pair)
                    message["headers"] = headers
                return send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            self._end(tokens)


def _current_request_id(connection: HTTPConnection) -> str:
    request_id = connection.scope.get("state", {}).get("request_id") or get_request_id()
    if request_id is None:
        raise ConfigurationError(
            "RequestId needs RequestIDMiddleware: build the app with build_app() / install() "
            "with CHASSIS_REQUEST_ID__ENABLED on, or app.add_middleware(RequestIDMiddleware)"
        )
    return str(request_id)


#: Dependency alias: the id of the request being served.
RequestId = Annotated[str, Depends(_current_request_id)]


def install_request_id(chassis: Chassis) -> None:
    """Add `RequestIDMiddleware` from `settings.request_id` (nothing when disabled)."""
    config = chassis.settings.request_id
    if not config.enabled:
        return
    options: dict[str, Any] = {
        "header": config.header,
        "trust_incoming": config.trust_incoming,
        "max_length": config.max_length,
    }
    RequestIDMiddleware(_unused, **options)  # fail at install time, not at first request
    chassis.add_middleware(RequestIDMiddleware, **options)


async def _unused(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("validation-only instance")  # pragma: no cover
