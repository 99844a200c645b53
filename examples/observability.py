"""Metrics and tracing on: Prometheus at /metrics, one span per request to the console."""

from fastapi_chassis import ChassisSettings, MetricsSettings, TracingSettings, build_app
from fastapi_chassis.observability.tracing import current_trace_id

settings = ChassisSettings(
    service_name="orders",
    metrics=MetricsSettings(enabled=True),
    tracing=TracingSettings(enabled=True, exporter="console", sample_ratio=1.0),
)
app = build_app(settings)


@app.get("/orders/{order_id}")
async def read_order(order_id: int) -> dict[str, object]:
    return {"id": order_id, "trace_id": current_trace_id()}
