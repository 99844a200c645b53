"""Pure ASGI middleware of the chassis, one class per module."""
