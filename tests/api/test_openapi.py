"""The OpenAPI document: made from the views, valid OpenAPI 3.1, served and shown as a page, and
true to what the API answers (real responses validated against it)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from shortener.openapi import document, undocumented


@pytest.fixture()
def spec(app: Flask) -> dict[str, Any]:
    return document(app)


def test_every_api_endpoint_is_documented(app: Flask) -> None:
    assert undocumented(app) == []


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"] == "3.1.0"


def test_each_operation_names_its_role_and_its_errors(spec: dict[str, Any]) -> None:
    created = spec["paths"]["/api/v1/links"]["post"]
    assert created["description"].startswith("Role: marketer or above.")
    assert created["security"] == [{"bearer": []}]
    assert {"201", "401", "403", "409", "422"} <= set(created["responses"])
    listed = spec["paths"]["/api/v1/links"]["get"]
    names = {parameter["name"] for parameter in listed["parameters"]}
    assert {"touchpoint", "stage", "campaign", "q", "limit", "cursor", "archived"} <= names


def test_the_document_is_served_without_a_key(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == spec


def test_the_reference_page_lists_every_operation(
    client: FlaskClient, spec: dict[str, Any]
) -> None:
    page = client.get("/docs/api").get_data(as_text=True)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert f'id="{operation["operationId"]}"' in page, (method, path)
    assert "marketer or above" in page
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in page


def _check(spec: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    """Validate `body` against the document's schema of that response (its references point
    into the document's components, carried along)."""
    content = spec["paths"][path][method]["responses"][str(status)]["content"]
    schema = {**content["application/json"]["schema"], "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


def test_real_answers_match_the_document(
    client: FlaskClient, spec: dict[str, Any], admin: dict[str, str]
) -> None:
    touchpoint = client.post(
        "/api/v1/touchpoints", headers=admin,
        json={"key": "flyer", "name": "Store flyer", "channel": "physical", "coupons": ["f10"]},
    )
    assert touchpoint.status_code == 201
    _check(spec, "/api/v1/touchpoints", "post", 201, touchpoint.get_json())
    link = client.post(
        "/api/v1/links", headers=admin,
        json={"url": "https://shop.example.com/", "touchpoint": "flyer", "stage": "awareness",
              "survey": {"kind": "nps"}, "expires_at": "2030-01-01T00:00:00Z"},
    )
    assert link.status_code == 201
    _check(spec, "/api/v1/links", "post", 201, link.get_json())
    page = client.get("/api/v1/links?limit=1", headers=admin)
    _check(spec, "/api/v1/links", "get", 200, page.get_json())
    refused = client.post("/api/v1/links", headers=admin, json={"url": 5})
    assert refused.status_code == 422
    _check(spec, "/api/v1/links", "post", 422, refused.get_json())
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        _check(spec, "/api/v1/links", "post", 201, {**link.get_json(), "id": "one"})
