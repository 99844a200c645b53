"""Request ids: echoed on every response, visible in handlers and background tasks."""

from fastapi import BackgroundTasks

from fastapi_chassis import ChassisSettings, RequestId, build_app, get_request_id

app = build_app(ChassisSettings(service_name="orders"))
AUDIT: list[str] = []


def audit(order_id: int) -> None:
    # Runs after the response is sent, still inside the request's context.
    AUDIT.append(f"order {order_id} placed by request {get_request_id()}")


@app.post("/orders/{order_id}")
async def place_order(
    order_id: int, request_id: RequestId, tasks: BackgroundTasks
) -> dict[str, int | str]:
    tasks.add_task(audit, order_id)
    return {"order": order_id, "request_id": request_id}
