"""`AccessLogMiddleware`: one structured line per HTTP request.

The line is written when the last body byte has been handed to the server (so a streaming
response's duration runs to its end), or when the request ends without a complete response:
an exception (logged as 500 at error level), or a client that went away (`disconnected: true`,
status 499 when no response had started).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import structlog
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send
from structlog.typing import FilteringBoundLogger

from fastapi_chassis._proxy import TrustedProxies
from fastapi_chassis._scope import app_path
from fastapi_chassis.middleware._observe import observe
from fastapi_chassis.observability._direct import DirectLines, direct_lines

__all__ = ["AccessLogMiddleware"]

#: nginx's "client closed request": the client left before any response started.
CLIENT_CLOSED = 499
_MAX_USER_AGENT = 512
_MAX_PATH = 1024
# Every key an access line's own fields can have.
_FIELDS = (
    "method",
    "route",
    "status",
    "duration_ms",
    "bytes",
    "client",
    "user_agent",
    "path",
    "disconnected",
)


class AccessLogMiddleware:
    """Log method, route template, status, duration, bytes, client and user agent per request.

    Args:
        skip_paths: exact paths (below the app's root path) never logged, e.g. health checks.
        trusted_proxies: IPs/CIDRs whose forwarding headers name the client (see
            `ProxySettings.trusted`); anyone else's are ignored.
        logger_name: the structlog logger the lines go to.
        clock: monotonic seconds for `duration_ms` (injectable for tests).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        skip_paths: Iterable[str] = (),
        trusted_proxies: Iterable[str] | TrustedProxies = (),
        logger_name: str = "fastapi_chassis.access",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self._skip = frozenset(skip_paths)
        self._proxies = (
            trusted_proxies
            if isinstance(trusted_proxies, TrustedProxies)
            else TrustedProxies(trusted_proxies)
        )
        self._logger_name = logger_name
        self._clock = clock
        self._logger: FilteringBoundLogger | None = None
        self._direct: DirectLines | None = None
        # JSON text of recurring values, so a line does not escape them again: the opening of
        # the line by (method, route) and the user agent by its logged (cut) bytes. Bounded:
        # both come from clients.
        self._heads: dict[tuple[str, str | None], str] = {}
        self._agents: dict[bytes, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = app_path(scope)
        if path in self._skip:
            await self.app(scope, receive, send)
            return

        await observe(self.app, scope, receive, send, path=path, access=self)

    def _log_incomplete(
        self,
        scope: Scope,
        root_path: str,
        path: str,
        status: int,
        sent: int,
        start: float,
        disconnected: bool,
        exc: BaseException | None = None,
    ) -> None:
        """The line for a request that ended without a complete response.

        `exc`: the app raised. A client that went away (a disconnect seen, `ClientDisconnect`,
        cancellation) is `disconnected` with the started status, or 499 when none started;
        otherwise the exception becomes a 500 further out (or keeps the started status). No
        `exc`: the app returned early; the client left mid-way, or the app broke the protocol
        (the server answers that with a 500).
        """
        if exc is not None:
            gone = disconnected or isinstance(
                exc, (ClientDisconnect, anyio.get_cancelled_exc_class())
            )
            final = (status or CLIENT_CLOSED) if gone else max(status, 500)
        else:
            gone = disconnected
            final = (status or CLIENT_CLOSED) if gone else (status or 500)
        self._log(scope, root_path, path, final, sent, start, disconnected=gone)

    def _log(
        self,
        scope: Scope,
        root_path: str,
        path: str,
        status: int,
        sent: int,
        start: float,
        *,
        disconnected: bool,
    ) -> None:
        # Whole microseconds: the line shows milliseconds with at most three decimals.
        micros: int | None
        try:
            micros = round((self._clock() - start) * 1_000_000)
        except (ValueError, OverflowError):  # an injected clock gave NaN or infinity
            micros = None
        logger = self._logger
        if logger is None:
            # Bound on first use so configure_logging() may run after the app is built.
            logger = self._logger = structlog.get_logger(self._logger_name).bind()
            self._direct = direct_lines(logger, "request", _FIELDS)
        agent = None
        for name, value in scope.get("headers", ()):
            if name == b"user-agent":
                agent = value
                break
        route = _route_template(scope, root_path)
        client = self._proxies.client_ip(scope)
        method = scope.get("method")
        level = "error" if status >= 500 else "info"
        direct = self._direct
        if direct is not None and type(status) is int and type(method) is str:
            tail = direct.tail(level)
            if tail == "":
                return  # below the configured level
            if tail is not None:
                # The line the chain would write for `fields` below, in the same key order.
                escape = direct.escape
                head = self._heads.get((method, route))
                if head is None:
                    head = f'{{"method":{escape(method)},"route":{_json_text(route)},"status":'
                    _remember(self._heads, (method, route), head)
                if agent is None:
                    agent_text = "null"
                elif type(agent) is not bytes:  # not ASGI's type: fine to log, not to key by
                    agent_text = escape(_user_agent(agent))
                else:
                    agent = agent[:_MAX_USER_AGENT]  # the logged part is the key: bounded
                    cached = self._agents.get(agent)
                    if cached is None:
                        cached = escape(_user_agent(agent))
                        _remember(self._agents, agent, cached)
                    agent_text = cached
                # `repr(micros / 1000)`, as the renderer writes the float, without its dtoa.
                # Past about 2**43 ms (279 years) repr's shortest form has fewer digits.
                if micros is None:
                    duration = "null"
                elif 0 <= micros < _TABLE_MICROS:
                    duration = f"{micros // 1000}.{_FRACTIONS[micros % 1000]}"
                else:
                    duration = repr(micros / 1000)
                line = (
                    f'{head}{status},"duration_ms":{duration},"bytes":{sent},'
                    f'"client":{_json_text(client)},'
                    f'"user_agent":{agent_text}'
                )
                if route is None:
                    line += f',"path":{escape(path[:_MAX_PATH])}'
                if disconnected:
                    line += ',"disconnected":true'
                direct.write(line + tail)
                return
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": None if micros is None else micros / 1000,
            "bytes": sent,
            "client": client,
            "user_agent": None if agent is None else _user_agent(agent),
        }
        if route is None:
            fields["path"] = path[:_MAX_PATH]
        if disconnected:
            fields["disconnected"] = True
        if level == "error":
            logger.error("request", **fields)
        else:
            logger.info("request", **fields)


def _json_text(value: str | None) -> str:
    return "null" if value is None else DirectLines.escape(value)


def _user_agent(value: bytes) -> str:
    """The logged user agent: at most `_MAX_USER_AGENT` bytes, control characters escaped."""
    text = value[:_MAX_USER_AGENT].decode("latin-1")
    if not text.isprintable():
        # Control bytes (ESC, CR/LF) would reach a terminal or forge console lines.
        text = text.encode("unicode_escape").decode("ascii")
    return text


_CACHED = 256

#: The decimals of n / 1000 as `repr()` writes them: "0" for 0, "5" for 500, "005" for 5.
_FRACTIONS = tuple(f"{n:03d}".rstrip("0") or "0" for n in range(1000))
#: Durations below this many microseconds (about 31 years) are written with `_FRACTIONS`.
_TABLE_MICROS = 10**15


def _remember(cache: dict[Any, str], key: Any, text: str) -> None:
    if len(cache) >= _CACHED:
        cache.clear()  # many distinct values: start over rather than grow
    cache[key] = text


def _route_template(scope: Scope, root_path: str) -> str | None:
    """The matched route's path template, e.g. `/notes/{note_id}`, or None (no route)."""
    route = scope.get("route")
    if route is None:
        return _match_template(scope, root_path)
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return None
    # Mounts add the matched prefix to root_path in place; the route's path is relative to it.
    mounted: str = scope.get("root_path", "")
    if mounted == root_path:
        return template  # not inside a mount: the usual request
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    if isinstance(route, Mount):
        return prefix or template
    return prefix + template


def _match_template(scope: Scope, root_path: str) -> str | None:
    # Older Starlette leaves no "route" for plain Starlette routes: match once, after the fact,
    # against the scope as it arrived (the router has since rewritten root_path).
    router = getattr(scope.get("app"), "router", None)
    routes = getattr(router, "routes", None)
    if not routes:
        return None
    probe = {
        "type": scope["type"],
        "path": scope["path"],
        "root_path": root_path,
        "method": scope.get("method"),
        "headers": scope.get("headers", []),
    }
    return _search(routes, probe)


def _search(routes: Iterable[BaseRoute], scope: dict[str, Any]) -> str | None:
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        template = getattr(route, "path", None)
        if not isinstance(template, str):
            continue
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                found = _search(inner, {**scope, **child})
                if found is None:
                    continue
                template += found
        if match is Match.FULL:
            return template
        if partial is None:
            partial = template
    return partial
