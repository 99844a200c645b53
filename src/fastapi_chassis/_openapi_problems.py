"""OpenAPI documentation of the problem+json envelope.

`document_problems(app)` wraps `app.openapi` so the generated document has `ProblemDetail` as
a component and the automatic 422 responses point at it (with `application/problem+json`)
instead of FastAPI's `HTTPValidationError`, which the chassis never sends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fastapi_chassis._error_handlers import status_title
from fastapi_chassis.errors import PROBLEM_JSON, ProblemDetail

if TYPE_CHECKING:
    from fastapi import FastAPI

REF_PREFIX = "#/components/schemas/"
PROBLEM_REF = REF_PREFIX + "ProblemDetail"
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def problem_schemas() -> dict[str, Any]:
    """`ProblemDetail` and the models it refers to, as OpenAPI component schemas."""
    schema = ProblemDetail.model_json_schema(ref_template=REF_PREFIX + "{model}")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {"ProblemDetail": schema, **definitions}


def problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}


def responses_for(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """Response objects documenting a problem+json body for each status."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if not 400 <= status <= 599:
            raise ValueError(f"problem_responses() got {status}; error statuses are 400-599")
        responses[status] = {"description": status_title(status), "content": problem_content()}
    return responses


def _operations(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for section in ("paths", "webhooks"):
        for path_item in (document.get(section) or {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    yield operation


def _is_fastapi_validation_response(response: Any) -> bool:
    if not isinstance(response, dict):
        return False
    for media in (response.get("content") or {}).values():
        ref = (media.get("schema") or {}).get("$ref", "")
        if ref == REF_PREFIX + "HTTPValidationError":
            return True
    return False


def rewrite(document: dict[str, Any]) -> None:
    """Point 422s at `ProblemDetail` and add its schemas to `document`, in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(problem_schemas())
    for operation in _operations(document):
        responses = operation["responses"]
        if _is_fastapi_validation_response(responses.get("422")):
            responses["422"] = {
                "description": responses["422"].get("description", "Validation Error"),
                "content": problem_content(),
            }
    # Drop FastAPI's own schemas once nothing refers to them (HTTPValidationError first: it
    # is what refers to ValidationError).
    for name in FASTAPI_VALIDATION_SCHEMAS:
        if f'"{REF_PREFIX}{name}"' not in json.dumps(document):
            schemas.pop(name, None)


def document_problems(app: FastAPI) -> None:
    """Wrap `app.openapi` so every document it generates describes the problem envelope."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    rewritten: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = generate()
        # FastAPI caches the document; rewrite each generated one exactly once.
        if not rewritten or rewritten[0] is not document:
            rewrite(document)
            rewritten[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
