"""The OpenAPI 3.1 document of the JSON API, made from the views themselves.

Each API view declares its operation (`@operation`): its summary, the pydantic models of its
query string and body (which the decorator validates and hands to the view, so the document
cannot say anything else than what is checked) and the types of its responses (TypedDicts the
views' JSON builders return, or models). `@requires` adds the role. The document walks the
app's URL map, so a view without a declaration shows up as a gap (tests/shortener/test_openapi.py
fails on one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app, render_template, request
from markupsafe import Markup
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from werkzeug.routing import Rule

from shortener import request_input, schemas
from shortener.errors import BadRequestError
from shortener.input_guard import BoundedIntegerConverter

F = TypeVar("F", bound=Callable[..., Any])
PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"
MAX_DIGITS = BoundedIntegerConverter.MAX_DIGITS


ERRORS = {
    400: "The query string or the body is malformed.",
    401: "No valid API key (`Authorization: Bearer tl_…`).",
    403: "The key's role does not reach the operation's.",
    404: "Nothing of that name or id.",
    409: "It conflicts with what is stored (a slug taken, a key used).",
    413: "The body is too large.",
    415: "The body is not of a media type the operation takes.",
    422: "A field of the body is missing, of the wrong type or refused.",
    429: "Too many requests: try again after `Retry-After` seconds.",
    503: "The database is away: try again after `Retry-After` seconds.",
}


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    query: type[schemas.Query] | None = None
    body: type[schemas.Body] | None = None
    responses: Mapping[int, Any] = field(default_factory=dict)  # status → type (None: no body)
    errors: tuple[int, ...] = ()
    media: Mapping[str, Any] | None = None  # the success's media types, when not JSON alone
    request_media: Mapping[str, Any] | None = None  # a body the view reads itself (CSV, files)
    csv: bool = False  # `format=csv` answers text/csv
    description: str = ""


def operation(
    summary: str,
    *,
    query: type[schemas.Query] | None = None,
    body: type[schemas.Body] | None = None,
    responses: Mapping[int, Any] | None = None,
    errors: tuple[int, ...] = (),
    media: Mapping[str, Any] | None = None,
    request_media: Mapping[str, Any] | None = None,
    csv: bool = False,
    description: str = "",
) -> Callable[[F], F]:
    """Declare an API view's operation. With `query` or `body`, the view receives `query=` or
    `body=`, validated (a 400 or 422 otherwise)."""
    declared = Operation(
        summary, query, body, dict(responses or {200: None}), errors, media, request_media, csv,
        description,
    )

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                kwargs["query"] = schemas.validate_query(query, request.args)
            if body is not None:
                kwargs["body"] = schemas.validate_body(body, json_body())
            return view(*args, **kwargs)

        wrapper.openapi = declared  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def json_body() -> Any:
    if not request.is_json:
        raise BadRequestError("The request body must be JSON (Content-Type: application/json).")
    return request_input.parse_json(request.get_data())


# --- the document ------------------------------------------------------------------------------


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation under /api/v1."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        view = app.view_functions[rule.endpoint]
        declared: Operation | None = getattr(view, "openapi", None)
        if declared is None:
            continue  # reported by undocumented()
        path, parameters = _path(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                declared, rule, view, parameters, components
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Touchlink API",
            "version": "1",
            "description": "Branded short links for customer touchpoints, and the analytics of"
            " the journeys they start. Every error has the shape of `Error`.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key."}
            },
        },
    }


def undocumented(app: Flask) -> list[str]:
    """The API's endpoints that declare no operation."""
    return sorted(
        rule.endpoint for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX + "/")
        and getattr(app.view_functions[rule.endpoint], "openapi", None) is None
    )


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {
            "Error": TypeAdapter(schemas.ErrorBody).json_schema(ref_template=REF),
        }
        self.schemas.update(self.schemas["Error"].pop("$defs", {}))

    def ref(self, kind: Any, *, mode: JsonSchemaMode = "validation") -> dict[str, Any]:
        """A reference to `kind`'s schema (a model or a TypedDict), added on first use."""
        name = getattr(kind, "__name__", None)
        found: dict[str, Any] = _closed(TypeAdapter(kind).json_schema(ref_template=REF, mode=mode))
        for sub, schema in found.pop("$defs", {}).items():
            self.schemas.setdefault(sub, schema)
        if name is None or not (isinstance(kind, type) and (
            issubclass(kind, BaseModel) or hasattr(kind, "__annotations__")
        )):
            return found  # a list, a union: inline
        self.schemas.setdefault(name, found)
        return {"$ref": REF.format(model=name)}


def _closed(schema: Any) -> Any:
    """`schema` with every object that lists its fields holding those alone: an answer sends
    exactly what its TypedDict says (bodies refuse other fields already)."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    found = {name: _closed(value) for name, value in schema.items()}
    if found.get("type") == "object" and "properties" in found:
        found.setdefault("additionalProperties", False)
    return found


def _operation(
    declared: Operation, rule: Rule, view: Any, parameters: list[dict[str, Any]],
    components: _Components,
) -> dict[str, Any]:
    role = getattr(view, "required_role", None)
    found: dict[str, Any] = {
        "operationId": rule.endpoint.replace(".", "_"),
        "summary": declared.summary,
        "tags": [_tag(rule.rule)],
        "parameters": [*parameters, *_query_parameters(declared, components)],
        "responses": {},
    }
    description = declared.description
    if role is not None:
        found["security"] = [{"bearer": []}]
        description = f"Role: {role.value} or above. {description}".strip()
    if description:
        found["description"] = description
    if declared.body is not None:
        found["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": components.ref(declared.body)}},
        }
    elif declared.request_media is not None:
        content = _media(declared.request_media, components)
        found["requestBody"] = {"required": True, "content": content}
    for status, kind in declared.responses.items():
        response: dict[str, Any] = {"description": "OK" if status < 300 else "Done"}
        if declared.media is not None:
            response["content"] = _media(declared.media, components)
        elif kind is not None:
            response["content"] = {"application/json": {
                "schema": components.ref(kind, mode="serialization")
            }}
            if declared.csv:
                response["content"]["text/csv"] = {"schema": {"type": "string"}}
        found["responses"][str(status)] = response
    errors = set(declared.errors) | {503}
    if declared.query is not None or declared.body is not None or declared.csv:
        errors.add(400)
    if declared.body is not None:
        errors |= {413, 415, 422}
    if role is not None:
        errors |= {401, 403, 429}
    if parameters:
        errors.add(404)
    for status in sorted(errors):
        found["responses"][str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
    return found


def _media(media: Mapping[str, Any], components: _Components) -> dict[str, Any]:
    """Media types and their schemas, a model or TypedDict given as such made a reference."""
    return {
        kind: {"schema": entry["schema"] if isinstance(entry["schema"], dict)
               else components.ref(entry["schema"])}
        for kind, entry in media.items()
    }


def _query_parameters(declared: Operation, components: _Components) -> list[dict[str, Any]]:
    if declared.query is None:
        return []
    schema = declared.query.model_json_schema(ref_template=REF)
    for sub, sub_schema in schema.pop("$defs", {}).items():
        components.schemas.setdefault(sub, sub_schema)
    required = set(schema.get("required", ()))
    found = []
    for name, prop in schema.get("properties", {}).items():
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            parameter["description"] = description
        found.append(parameter)
    return found


_CONVERTER = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


def _path(rule: Rule) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path of a Flask rule, and its path parameters."""
    parameters = []

    def replace(match: re.Match[str]) -> str:
        converter, arguments, name = match.groups()
        schema: dict[str, Any] = {"type": "string"}
        if converter == "int":  # more digits than that is no id of ours: no route (404)
            schema = {"type": "integer", "minimum": 0, "maximum": 10**MAX_DIGITS - 1}
        elif converter == "any":
            schema = {"type": "string", "enum": [a.strip() for a in (arguments or "").split(",")]}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _CONVERTER.sub(replace, rule.rule), parameters


def _tag(rule: str) -> str:
    parts = rule.removeprefix(PREFIX + "/").split("/")
    first = parts[0].split(".")[0]
    return parts[1] if first == "reports" and len(parts) > 1 else first


# --- the routes --------------------------------------------------------------------------------

bp = Blueprint("openapi", __name__, template_folder="templates")


@bp.get("/api/v1/openapi.json")
@operation("This document", media={"application/json": {"schema": {"type": "object"}}})
def openapi_json() -> Any:
    return document(current_app)


@bp.get("/docs/api")
def api_reference() -> str:
    """The document as a page: every operation, its parameters and fields, its responses."""
    doc = document(current_app)
    return render_template(
        "api_reference.html", doc=doc, tags=reference(doc), shapes=shapes(doc), code=inline_code
    )


def inline_code(text: str) -> Markup:
    """The document's `backticks` as <code>, the rest escaped."""
    code = Markup("<code>{}</code>")
    return Markup("").join(
        code.format(part) if i % 2 else part for i, part in enumerate(text.split("`"))
    )


# --- the reference page ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    kind: str  # the type, for people: "string", "integer | null", "LinkOut"
    required: bool
    note: str


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    method: str
    path: str
    summary: str
    description: str
    parameters: list[Row]
    body: list[Row]  # the fields of the JSON body
    body_types: list[str]  # its media types
    responses: list[Row]


def reference(doc: Mapping[str, Any]) -> list[tuple[str, list[Entry]]]:
    """The document's operations by tag, each with its rows, for the reference page."""
    schemas = doc["components"]["schemas"]
    tags: dict[str, list[Entry]] = {}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {})
            json_body = body.get("application/json", {}).get("schema")
            tags.setdefault(op["tags"][0], []).append(Entry(
                op["operationId"], method.upper(), path, op["summary"],
                op.get("description", ""),
                [Row(p["name"], f"{p['in']}: {_kind(p['schema'])}", p["required"],
                     p.get("description", "")) for p in op["parameters"]],
                _fields(_resolve(json_body, schemas)) if json_body else [],
                list(body),
                [Row(status, ", ".join(
                    _kind(media["schema"]) if kind == "application/json" else kind
                    for kind, media in response.get("content", {}).items()
                ), False, response["description"]) for status, response in op["responses"].items()],
            ))
    return sorted(tags.items())


def shapes(doc: Mapping[str, Any]) -> list[tuple[str, list[Row]]]:
    """The document's named schemas (bodies and answers), each with its fields."""
    return sorted((name, _fields(schema)) for name, schema in doc["components"]["schemas"].items())


def _resolve(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _fields(schema: Mapping[str, Any]) -> list[Row]:
    required = set(schema.get("required", ()))
    return [
        Row(name, _kind(prop), name in required, prop.get("description", ""))
        for name, prop in schema.get("properties", {}).items()
    ]


def _kind(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"].rsplit("/", 1)[1])
    if "anyOf" in schema:
        return " | ".join(_kind(option) for option in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    if schema.get("type") == "array":
        return f"list of {_kind(schema.get('items', {}))}"
    if schema.get("type") == "object" and "properties" in schema:  # a generic one, inline
        fields = ", ".join(f"{name}: {_kind(prop)}" for name, prop in schema["properties"].items())
        return f"object ({fields})"
    kind = str(schema.get("type", "any"))
    return f"{kind} ({schema['format']})" if "format" in schema else kind
