"""The OpenAPI 3.1 document of the API, generated from the endpoints' msgspec Structs
(``msgspec.json.schema_components``): answers are components, query and path Structs become
parameters, and every refusal is a ``Problem``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from .endpoint import Endpoint
from .schemas import Problem

PREFIX = "/api/v1"
REF = "#/components/schemas/{name}"
TITLE = "fsm read-only API"
VERSION = "1"

_REFUSALS = {
    "401": "No valid token: none given, unknown, or revoked",
    "404": "No such object in the token's scope (missing, or another tenant's)",
    "429": "Too many requests for this token (or failed attempts from this address); see Retry-After",
}


def parameters(struct: type[msgspec.Struct] | None, where: str) -> list[dict[str, Any]]:
    """The OpenAPI parameters of a query or path Struct."""
    if struct is None:
        return []
    _, components = msgspec.json.schema_components([struct], ref_template=REF)
    own = components[struct.__name__]
    required = set(own.get("required", ()))
    out = []
    for name, schema in own.get("properties", {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": schema,
        }
        if "description" in schema:
            param["description"] = schema["description"]
        out.append(param)
    return out


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(name="Problem")}}},
    }


def _operation(e: Endpoint, answer_schema: dict[str, Any]) -> dict[str, Any]:
    params = parameters(e.path_params, "path") + parameters(e.query, "query")
    responses: dict[str, Any] = {
        "200": {"description": e.summary, "content": {"application/json": {"schema": answer_schema}}}
    }
    if params:
        responses["400"] = _problem("A parameter is missing, unknown or out of range")
    for status, text in _REFUSALS.items():
        responses[status] = _problem(text)
    responses["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    responses["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    op: dict[str, Any] = {
        "operationId": e.operation,
        "summary": e.summary,
        "tags": [e.tag],
        "parameters": params,
        "responses": responses,
    }
    if e.description:
        op["description"] = e.description
    return op


def document(endpoints: Sequence[Endpoint], *, server_url: str = PREFIX) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints``."""
    answers, components = msgspec.json.schema_components(
        [*(e.answer for e in endpoints), Problem], ref_template=REF
    )
    paths: dict[str, Any] = {}
    for e, schema in zip(endpoints, answers, strict=False):
        paths.setdefault(e.path, {})["get"] = _operation(e, schema)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Read-only access to a dealer's or a customer's fleet for ERPs and scripts "
            "(docs/api.md). Every request carries `Authorization: Bearer TOKEN`.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


__all__ = ["PREFIX", "document", "parameters"]
