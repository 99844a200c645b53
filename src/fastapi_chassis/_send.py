"""`send` wrappers as plain functions: what the middleware's per-message wrappers share.

A wrapper that only looks at or rewrites a message before passing it on needs no coroutine of
its own: a plain function that returns the wrapped `send(message)` is awaited by the caller
just the same (ASGI asks for an awaitable callable), and the caller awaits the server's
`send` directly. That spares a coroutine object and a frame per message, for every message of
every request. Wrappers that must act after the message was handed over (the access log,
which notes delivery) stay coroutines.

What such a wrapper returns is whatever the server's `send` returns: a coroutine under uvicorn
and hypercorn. Code that schedules `send(message)` as a task instead of awaiting it
(`asyncio.create_task`) would need the server's `send` to return a coroutine as well.
"""

from __future__ import annotations


async def nothing() -> None:
    """The awaitable a wrapper returns when it swallows a message instead of passing it on."""
