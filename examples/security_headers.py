"""Security headers: OWASP defaults on every response; a handler's own header wins."""

from fastapi.responses import JSONResponse

from fastapi_chassis import ChassisSettings, SecurityHeadersSettings, build_app

settings = ChassisSettings(
    security_headers=SecurityHeadersSettings(
        cross_origin_resource_policy="same-site",  # shared with app.example.com
        extra_headers={"Cross-Origin-Embedder-Policy": "require-corp"},
    )
)
app = build_app(settings)


@app.get("/prices")
async def prices() -> dict[str, float]:
    return {"tea": 2.5}  # gets Cache-Control: no-store and the rest


@app.get("/catalog")
async def catalog() -> JSONResponse:
    # Public, cacheable data: the handler's Cache-Control is kept as is.
    return JSONResponse({"items": 3}, headers={"Cache-Control": "public, max-age=300"})
