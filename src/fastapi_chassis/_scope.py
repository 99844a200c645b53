"""Small readers of the ASGI scope shared by the middleware."""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any


def app_path(scope: Mapping[str, Any]) -> str:
    """The request path as the app's routes see it: `path` without the `root_path` prefix.

    uvicorn (`--root-path`) and Starlette put the root path in front of `path`; exempt and
    excluded paths in settings are written as routes are, so they compare against this.
    """
    path: str = scope.get("path", "")
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest.startswith("/"):
            return rest or "/"
    return path


#: The name of an ASGI header pair. `name in map(HEADER_NAME, headers)` asks whether a header is
#: there with a scan that runs in C (no Python frame per header): the hot paths' usual case, a
#: header that is absent, costs a fraction of a Python loop over the headers.
HEADER_NAME = itemgetter(0)
