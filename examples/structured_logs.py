"""Structured logs: a handler's lines carry the request's context; secrets never render."""

from fastapi_chassis import ChassisSettings, Logger, LoggingSettings, build_app

# JSON lines (the default outside environment="dev"); install() configures logging.
app = build_app(ChassisSettings(service_name="notes", logging=LoggingSettings(json_output=True)))


@app.post("/login")
async def login(credentials: dict[str, str], log: Logger) -> dict[str, bool]:
    # `credentials["password"]` is masked: "password" is one of logging.redact_keys.
    log.info("login attempt", user=credentials.get("user"), credentials=credentials)
    return {"ok": True}
