"""Property-based: whatever a client sends, the request parsers and the destination validator
answer a 4xx with a JSON error, or accept; never a 500."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shortener.errors import InvalidURLError
from shortener.urls import validate_destination

# Function-scoped fixtures (the app and its client) serve every example of a test: each example
# is one more request to the same app, which is what a client sending many would do. The same
# examples each run (derandomize), so that CI answers the same way twice.
EXAMPLES = settings(
    max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# Any code point, lone surrogates and NUL included (hypothesis leaves surrogates out by default).
TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
LINK_FIELDS = st.fixed_dictionaries({}, optional={
    name: JSON | TEXT for name in (
        "url", "touchpoint", "stage", "slug", "campaign", "title", "redirect_status", "utm",
        "expires_at", "starts_at", "fallback_url", "domain", "survey", "track_conversions",
    )
})
PARAMETERS = st.dictionaries(
    st.sampled_from(["from", "to", "stage", "channel", "campaign", "bots", "tests", "limit",
                     "order", "by", "format", "mode", "interval", "group_by", "cursor", "q"])
    | st.text(max_size=8),  # NUL included; a surrogate cannot travel in a URL at all
    st.text(max_size=30),
    max_size=5,
)


def _refused_clearly(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        assert set(response.get_json()) == {"error"}


@settings(max_examples=500, derandomize=True)
@given(url=st.text(max_size=200) | st.from_regex(r"https?://[^/]{0,30}/.{0,30}", fullmatch=True))
def test_the_destination_validator_accepts_or_refuses_with_an_invalid_url(url: str) -> None:
    try:
        validated = validate_destination(url, own_hosts=("go.test",))
    except InvalidURLError:
        return
    assert validated.isascii()
    assert validated.split("://", 1)[0] in ("http", "https")


@EXAMPLES
@given(fields=LINK_FIELDS)
def test_any_link_body_is_created_or_refused_with_a_json_error(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    fields: dict[str, Any],
) -> None:
    _refused_clearly(client.post("/api/v1/links", json=fields, headers=marketer))


@EXAMPLES
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_as_a_json_body_are_refused_with_a_json_error(
    client: FlaskClient, marketer: dict[str, str], raw: bytes,
) -> None:
    response = client.post("/api/v1/touchpoints", data=raw,
                           headers={**marketer, "Content-Type": "application/json"})
    _refused_clearly(response)


@EXAMPLES
@given(params=PARAMETERS, report=st.sampled_from([
    "touchpoints", "stages", "timeseries", "funnel", "paths", "links", "campaigns",
]))
def test_any_report_parameters_answer_or_are_refused_with_a_json_error(
    client: FlaskClient, analyst: dict[str, str], params: dict[str, str], report: str,
) -> None:
    response = client.get(f"/api/v1/reports/{report}", query_string=params, headers=analyst)
    _refused_clearly(response)


@EXAMPLES
@given(body=JSON)
def test_any_json_document_sent_to_a_bulk_import_is_answered_or_refused_clearly(
    client: FlaskClient, marketer: dict[str, str], body: Any,
) -> None:
    response = client.post("/api/v1/links/bulk", data=json.dumps(body),
                           headers={**marketer, "Content-Type": "application/json"})
    _refused_clearly(response)
