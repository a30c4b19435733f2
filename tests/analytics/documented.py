"""Real report answers checked against the OpenAPI document: what it says each report sends (its
JSON, its CSV, its refusals) is what it sends."""

from __future__ import annotations

from typing import Any

import jsonschema
from flask import Flask
from flask.testing import FlaskClient

from shortener.openapi import document

PREFIX = "/api/v1/reports/"


class Documented:
    """The reports asked with a key, each answer validated against the document's schema of its
    path, its status and its media type."""

    def __init__(self, app: Flask, client: FlaskClient, key: dict[str, str]) -> None:
        self._spec = document(app)
        self._components = self._spec["components"]
        self._client = client
        self._key = key

    def get(self, documented: str, path: str | None = None, **params: Any) -> Any:
        """GET the report `path` (by default `documented`, its path in the document, such as
        `links/{link_id}`); its JSON, or its text for CSV, once checked."""
        response = self._client.get(
            PREFIX + (path or documented), query_string=params, headers=self._key
        )
        operation = self._spec["paths"][PREFIX + documented]["get"]
        answers = operation["responses"]
        assert str(response.status_code) in answers, (documented, response.status_code)
        content = answers[str(response.status_code)]["content"]
        assert response.mimetype in content, (documented, response.mimetype)
        if response.mimetype == "text/csv":
            return response.get_data(as_text=True)
        schema = {**content["application/json"]["schema"], "components": self._components}
        jsonschema.Draft202012Validator(schema).validate(response.get_json())
        return response.get_json()

    def parameters(self, documented: str) -> set[str]:
        """The names of the query parameters the document gives the report."""
        operation = self._spec["paths"][PREFIX + documented]["get"]
        return {p["name"] for p in operation["parameters"] if p["in"] == "query"}

