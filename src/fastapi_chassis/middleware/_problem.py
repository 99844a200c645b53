"""Problem+json responses sent straight to an ASGI `send` by middleware that answer early."""

from __future__ import annotations

from starlette.types import Send

from fastapi_chassis.errors import PROBLEM_JSON, problem_body, problem_bytes

_CONTENT_TYPE = (b"content-type", PROBLEM_JSON.encode("ascii"))


async def send_problem(
    send: Send,
    status: int,
    *,
    title: str,
    code: str,
    detail: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete problem+json response (start and body) through `send`."""
    body = problem_bytes(problem_body(status, title=title, code=code, detail=detail))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                _CONTENT_TYPE,
                (b"content-length", str(len(body)).encode("ascii")),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
