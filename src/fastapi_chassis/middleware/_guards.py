"""Starlette's host and CORS-preflight guards, answering their 400s as problem+json.

`TrustedHostMiddleware` and `CORSMiddleware` reject requests themselves with plain-text 400
bodies ("Invalid host header", "Disallowed CORS origin"). `install()` adds these subclasses
instead, so those answers have the same shape as every other chassis error. What is accepted or
rejected is Starlette's decision, unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_chassis._send import nothing
from fastapi_chassis.errors import problem_body, problem_response
from fastapi_chassis.middleware._problem import send_problem

__all__ = ["ProblemCORSMiddleware", "ProblemTrustedHostMiddleware"]

_PASSED = "fastapi_chassis.host_accepted"


class ProblemTrustedHostMiddleware(TrustedHostMiddleware):
    """`TrustedHostMiddleware` whose "Invalid host header" is a 400 problem+json.

    A scope key set by the wrapped app tells the guard's own rejection from a 400 the app
    answered itself, which passes through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str] | None = None,
        www_redirect: bool = True,
    ) -> None:
        super().__init__(_Mark(app), allowed_hosts=allowed_hosts, www_redirect=www_redirect)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        replaced = False

        def send_checked(message: Message) -> Awaitable[None]:
            nonlocal replaced
            if replaced:
                return nothing()  # the plain-text body of the rejection
            if (
                message["type"] == "http.response.start"
                and message["status"] == 400
                and not scope.get(_PASSED)
            ):
                replaced = True
                return send_problem(
                    send,
                    400,
                    title="Bad Request",
                    code="invalid_host",
                    detail="the Host header does not name a host this service answers for",
                )
            return send(message)

        await super().__call__(scope, receive, send_checked)


class _Mark:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_PASSED] = True
        await self.app(scope, receive, send)


class ProblemCORSMiddleware(CORSMiddleware):
    """`CORSMiddleware` whose refused preflight is a 400 problem+json (CORS headers kept)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        failures = bytes(response.body).decode("latin-1").removeprefix("Disallowed CORS ")
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-type", "content-length")
        }
        body = problem_body(
            400,
            title="Bad Request",
            code="cors_preflight_rejected",
            detail=f"this cross-origin request is not allowed: {failures}",
            extra={"rejected": [part.strip() for part in failures.split(",") if part.strip()]},
        )
        return problem_response(body, headers=headers)
