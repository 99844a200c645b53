"""Self-hosted interactive docs: Swagger UI and ReDoc pages with no inline script and no CDN.

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN and start Swagger UI with an inline
script, which forces a loose Content-Security-Policy and fails on air-gapped networks. The
chassis replaces those two routes with pages that load the assets from the service itself
(shipped by `fastapi-offline`, the `docs` extra) plus a small init script, so the docs CSP can
be `'self'`-only. Without the extra, the same pages load the assets from the CDN FastAPI uses
and the docs CSP names that one origin.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = ["ASSETS_PATH", "DocsPages", "docs_csp", "install_docs"]

#: Where the docs assets are served from (under the app's root path).
ASSETS_PATH = "/_chassis/docs"
_CDN = "https://cdn.jsdelivr.net"
_CDN_FILES = {
    "swagger-ui-bundle.js": f"{_CDN}/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
    "swagger-ui.css": f"{_CDN}/npm/swagger-ui-dist@5/swagger-ui.css",
    "redoc.standalone.js": f"{_CDN}/npm/redoc@2/bundles/redoc.standalone.js",
}
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
_ASSET_CACHE = "public, max-age=86400"
_OWN_STATIC = Path(__file__).parent / "_static"


def _offline_static() -> Path | None:
    try:
        spec = find_spec("fastapi_offline")
    except (ImportError, ValueError):  # blocked or half-installed: same as absent
        return None
    if spec is None or spec.origin is None:
        return None
    static = Path(spec.origin).parent / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def _inline_script_hash(page: str) -> str:
    match = re.search(r"<script>(.*?)</script>", page, re.DOTALL)
    script = match.group(1) if match else ""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def docs_csp(*, self_hosted: bool, inline_styles: bool = False) -> str:
    """The Content-Security-Policy the docs pages need, and nothing more.

    Scripts and styles come from the service (or the CDN without the `docs` extra); the only
    inline script allowed is FastAPI's OAuth2 redirect page, pinned by its hash. ReDoc builds
    its styles at run time, so its page alone needs `inline_styles` (never inline scripts).
    """
    oauth2 = _inline_script_hash(bytes(get_swagger_ui_oauth2_redirect_html().body).decode())
    origin = "'self'" if self_hosted else f"'self' {_CDN}"
    styles = f"{origin} 'unsafe-inline'" if inline_styles else origin
    return (
        f"default-src 'none'; script-src {origin} {oauth2}; style-src {styles}; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


@dataclass(frozen=True)
class DocsPages:
    """What `install_docs` served: the HTML page paths and whether assets are self-hosted."""

    swagger: tuple[str, ...]
    redoc: tuple[str, ...]
    self_hosted: bool

    def policies(self, override: str | None = None) -> dict[str, str]:
        """Path -> Content-Security-Policy for each docs page (`override` for all of them)."""
        swagger = override or docs_csp(self_hosted=self.self_hosted)
        redoc = override or docs_csp(self_hosted=self.self_hosted, inline_styles=True)
        return {
            **dict.fromkeys(self.swagger, swagger),
            **dict.fromkeys(self.redoc, redoc),
        }


def _asset_url(root: str, name: str, static: Path | None) -> str:
    if static is None and name in _CDN_FILES:
        return _CDN_FILES[name]
    return f"{root}{ASSETS_PATH}/{name}"


def _swagger_page(app: FastAPI, static: Path | None) -> Any:
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        config: dict[str, Any] = {"url": f"{root}{app.openapi_url}"}
        config.update(
            {
                "dom_id": "#swagger-ui",
                "layout": "BaseLayout",
                "deepLinking": True,
                "showExtensions": True,
                "showCommonExtensions": True,
            }
        )
        config.update(app.swagger_ui_parameters or {})
        if app.swagger_ui_oauth2_redirect_url:
            config["oauth2RedirectPath"] = f"{root}{app.swagger_ui_oauth2_redirect_url}"
        if app.swagger_ui_init_oauth:
            config["initOAuth"] = app.swagger_ui_init_oauth
        data = html.escape(json.dumps(jsonable_encoder(config)), quote=True)
        css = _asset_url(root, "swagger-ui.css", static)
        bundle = _asset_url(root, "swagger-ui-bundle.js", static)
        init = f"{root}{ASSETS_PATH}/swagger-init.js"
        icon = f'<link rel="icon" href="{root}{ASSETS_PATH}/favicon.png">\n' if static else ""
        page = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<link rel="stylesheet" href="{css}">\n{icon}'
            f"<title>{html.escape(app.title)} - Swagger UI</title>\n</head>\n<body>\n"
            '<div id="swagger-ui"></div>\n'
            f'<script src="{bundle}"></script>\n'
            f'<script src="{init}" data-config="{data}"></script>\n</body>\n</html>\n'
        )
        return HTMLResponse(page)

    return swagger_ui


def _redoc_page(app: FastAPI, static: Path | None) -> Any:
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        spec = html.escape(f"{root}{app.openapi_url}", quote=True)
        icon = f'<link rel="icon" href="{root}{ASSETS_PATH}/favicon.png">\n' if static else ""
        page = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"{icon}<title>{html.escape(app.title)} - ReDoc</title>\n</head>\n<body>\n"
            f'<redoc spec-url="{spec}"></redoc>\n'
            f'<script src="{_asset_url(root, "redoc.standalone.js", static)}"></script>\n'
            "</body>\n</html>\n"
        )
        return HTMLResponse(page)

    return redoc


def _assets_endpoint(static: Path | None) -> Any:
    files = {"swagger-init.js": _OWN_STATIC / "swagger-init.js"}
    if static is not None:
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            files[name] = static / name
        files["favicon.png"] = static / "favicon.png"

    async def asset(request: Request) -> Response:
        path = files.get(request.path_params["name"])
        if path is None:
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(
            path,
            media_type=_MEDIA_TYPES[path.suffix],
            headers={"Cache-Control": _ASSET_CACHE},
        )

    return asset


def _replace_route(routes: list[BaseRoute], path: str, endpoint: Any) -> bool:
    for index, route in enumerate(routes):
        if isinstance(route, Route) and route.path == path:
            routes[index] = Route(path, endpoint, include_in_schema=False)
            return True
    return False


def install_docs(app: FastAPI) -> DocsPages:
    """Swap FastAPI's CDN docs pages on `app` for self-hosted ones; returns the page paths."""
    static = _offline_static()
    swagger: list[str] = []
    redoc: list[str] = []
    routes = app.router.routes
    if app.docs_url and _replace_route(routes, app.docs_url, _swagger_page(app, static)):
        swagger.append(app.docs_url)
        if app.swagger_ui_oauth2_redirect_url:
            swagger.append(app.swagger_ui_oauth2_redirect_url)
    if app.redoc_url and _replace_route(routes, app.redoc_url, _redoc_page(app, static)):
        redoc.append(app.redoc_url)
    if swagger or redoc:
        routes.append(
            Route(
                ASSETS_PATH + "/{name}",
                _assets_endpoint(static),
                methods=["GET", "HEAD"],
                include_in_schema=False,
            )
        )
    return DocsPages(swagger=tuple(swagger), redoc=tuple(redoc), self_hosted=static is not None)
