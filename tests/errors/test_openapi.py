from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openapi_schema_validator import OAS31Validator, validate
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import BaseModel

from fastapi_chassis import NotFound
from fastapi_chassis.errors import problem_responses

MakeApp = Callable[..., FastAPI]
PROBLEM_REF = "#/components/schemas/ProblemDetail"


class Note(BaseModel):
    text: str


class RuleViolation(BaseModel):
    rule: str


def notes_app(make_app: MakeApp) -> FastAPI:
    app = make_app()

    @app.post("/notes/{note_id}", responses=problem_responses(404, 409))
    async def put_note(note_id: int, note: Note) -> Note:
        if note_id > 10:
            raise NotFound("no such note")
        return note

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return app


def fetch_document(app: FastAPI) -> dict[str, Any]:
    with TestClient(app) as client:
        document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_document_is_valid_openapi(make_app: MakeApp) -> None:
    document = fetch_document(notes_app(make_app))
    OpenAPIV31SpecValidator(document).validate()


def test_validation_responses_reference_the_problem_schema(make_app: MakeApp) -> None:
    document = fetch_document(notes_app(make_app))
    responses = document["paths"]["/notes/{note_id}"]["post"]["responses"]
    assert responses["422"]["content"] == {
        "application/problem+json": {"schema": {"$ref": PROBLEM_REF}}
    }
    schemas = document["components"]["schemas"]
    assert {"ProblemDetail", "ProblemFieldError"} <= set(schemas)
    assert "HTTPValidationError" not in json.dumps(document)
    assert "ValidationError" not in schemas
    assert set(schemas["ProblemDetail"]["required"]) == {"title", "status", "code"}


def test_problem_responses_declares_each_status(make_app: MakeApp) -> None:
    document = fetch_document(notes_app(make_app))
    responses = document["paths"]["/notes/{note_id}"]["post"]["responses"]
    for status, description in (("404", "Not Found"), ("409", "Conflict")):
        assert responses[status]["description"] == description
        assert responses[status]["content"]["application/problem+json"]["schema"] == {
            "$ref": PROBLEM_REF
        }
    # Routes without parameters get no 422 (FastAPI's rule), and no problem entries.
    assert set(document["paths"]["/ping"]["get"]["responses"]) == {"200"}


def test_real_error_bodies_match_the_documented_schema(make_app: MakeApp) -> None:
    app = notes_app(make_app)
    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
        bodies = [
            client.post("/notes/x", json={"text": 3}).json(),
            client.post("/notes/11", json={"text": "hi"}).json(),
        ]
    schema = {"$ref": PROBLEM_REF, "components": document["components"]}
    for body in bodies:
        validate(body, schema, cls=OAS31Validator)
    assert [body["status"] for body in bodies] == [422, 404]


def test_a_422_the_route_declares_itself_is_left_alone(make_app: MakeApp) -> None:
    app = make_app()

    @app.post("/rules/{rule_id}", responses={422: {"model": RuleViolation}})
    async def apply_rule(rule_id: int) -> dict[str, int]:
        return {"rule": rule_id}

    document = fetch_document(app)
    content = document["paths"]["/rules/{rule_id}"]["post"]["responses"]["422"]["content"]
    assert content == {
        "application/json": {"schema": {"$ref": "#/components/schemas/RuleViolation"}}
    }
    OpenAPIV31SpecValidator(document).validate()


def test_problem_responses_refuses_non_error_statuses() -> None:
    with pytest.raises(ValueError, match="400-599"):
        problem_responses(200)
