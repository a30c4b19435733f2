"""Real answers checked against the OpenAPI document: what it says an operation sends (its status,
its media type, its JSON, closed to any other key) is what it sends."""

from __future__ import annotations

from typing import Any

import jsonschema
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shortener.openapi import document

PREFIX = "/api/v1/reports/"


def checked(spec: dict[str, Any], path: str, method: str, response: TestResponse) -> Any:
    """`response` checked against the document's operation (`path` as the document writes it):
    its JSON (or its text, for another media type; None when documented without a body)."""
    answers = spec["paths"][path][method]["responses"]
    assert str(response.status_code) in answers, (path, method, response.status_code)
    content = answers[str(response.status_code)].get("content")
    if content is None:
        assert response.get_data() == b"", (path, method)
        return None
    assert response.mimetype in content, (path, method, response.mimetype)
    if response.mimetype != "application/json":
        return response.get_data(as_text=True)
    schema = {**content["application/json"]["schema"], "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(response.get_json())
    return response.get_json()


class Documented:
    """The reports asked with a key, each answer checked against the document."""

    def __init__(self, app: Flask, client: FlaskClient, key: dict[str, str]) -> None:
        self._spec = document(app)
        self._client = client
        self._key = key

    def get(self, documented: str, path: str | None = None, **params: Any) -> Any:
        """GET the report `path` (by default `documented`, its path in the document, such as
        `links/{link_id}`); its JSON, or its text for CSV, once checked."""
        response = self._client.get(
            PREFIX + (path or documented), query_string=params, headers=self._key
        )
        return checked(self._spec, PREFIX + documented, "get", response)

    def parameters(self, documented: str) -> set[str]:
        """The names of the query parameters the document gives the report."""
        operation = self._spec["paths"][PREFIX + documented]["get"]
        return {p["name"] for p in operation["parameters"] if p["in"] == "query"}
