"""Input from outside that once made a 500 or a silent wrong answer: each now a clear 4xx."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD
from tests.shortener.conftest import ErrorCheck

LINKS = "/api/v1/links"


@pytest.mark.parametrize("text", ["lyon\x00", "\ud800", "a\udfffb"])
def test_nul_or_a_lone_surrogate_in_any_json_string_is_a_400_naming_it(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck, text: str,
) -> None:
    raw = ('{"url": "https://shop.example.com/", "touchpoint": "store-flyer", '
           '"stage": "awareness", "title": %s}')
    body = raw % json.dumps(text)  # the escapes as a client writes them

    response = client.post(LINKS, data=body, headers={**marketer, "Content-Type":
                                                      "application/json"})

    error = expect_error(response, 400, "invalid_text")
    assert error["details"] == {"field": "title"}
    assert client.get(LINKS, headers=marketer).get_json()["items"] == []


@pytest.mark.parametrize("path", [
    "/api/v1/reports/touchpoints?campaign=spring%00",
    "/api/v1/reports/funnel?stage=%00",
    "/api/v1/links?q=a%00b",
    "/api/v1/links?touchpoint%00=x",
])
def test_nul_in_a_query_parameter_is_a_400(
    client: FlaskClient, analyst: dict[str, str], path: str,
) -> None:
    response = client.get(path, headers=analyst)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "invalid_text"


def test_nul_in_a_dashboard_parameter_or_the_sign_in_email_is_a_400(
    auth: Any, client: FlaskClient, pages: Any,
) -> None:
    analyst = auth.client("analyst")
    assert analyst.get("/dashboard?campaign=x%00").status_code == 400
    token = pages.csrf_token(client)
    signed = client.post("/signin", data={"email": "a\x00@example.com", "password": "x",
                                          "csrf_token": token})
    assert signed.status_code == 400


def test_a_json_body_naming_a_key_twice_is_a_400(
    client: FlaskClient, marketer: dict[str, str], expect_error: ErrorCheck,
) -> None:
    body = ('{"url": "https://shop.example.com/", "touchpoint": "store-flyer", '
            '"stage": "awareness", "slug": "one", "slug": "two"}')

    response = client.post(LINKS, data=body, headers={**marketer, "Content-Type":
                                                      "application/json"})

    error = expect_error(response, 400)
    assert "'slug' twice" in error["message"]


def test_cr_or_lf_in_the_sign_in_next_is_dropped_not_sent_on(
    auth: Any, client: FlaskClient, pages: Any,
) -> None:
    auth.add_user("ana@example.com", "analyst")

    signed = pages.post_form(client, "/signin?next=/dashboard%0d%0aSet-Cookie:%20x=1", {
        "email": "ana@example.com", "password": PASSWORD,
    })

    assert signed.status_code == 302
    assert "\r" not in signed.headers["Location"] and "\n" not in signed.headers["Location"]
    assert "Set-Cookie" not in signed.headers["Location"]


@pytest.mark.parametrize("url", [
    "http://[::ffff:127.0.0.1]/x",  # the service's own host, 127.0.0.1, as IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/x",
    "https://[0:0:0:0:0:ffff:127.0.0.1]:443/x",
])
def test_an_ipv4_mapped_ipv6_spelling_of_our_own_host_is_no_destination(
    make_app: Any, marketer: dict[str, str], touchpoint: dict[str, Any],
    expect_error: ErrorCheck, url: str,
) -> None:
    ours = make_app(short_domains=("127.0.0.1",)).test_client()
    body = {"url": url, "touchpoint": "store-flyer", "stage": "awareness"}

    error = expect_error(ours.post(LINKS, json=body, headers=marketer), 422, "invalid_url")
    assert "this link shortener itself" in error["message"]


@pytest.mark.parametrize("path", ["/api/v1/links/%s", "/api/v1/reports/links/%s",
                                  "/links/%s", "/api/v1/links?limit=%s"])
def test_a_number_past_pythons_digit_limit_is_a_4xx(
    client: FlaskClient, analyst: dict[str, str], path: str,
) -> None:
    response = client.get(path % ("9" * 5000), headers=analyst)

    assert 400 <= response.status_code < 500


def test_api_answers_are_never_cached(
    client: FlaskClient, analyst: dict[str, str],
) -> None:
    for path in ("/api/v1/links", "/api/v1/reports/touchpoints", "/api/v1/nothing-here"):
        assert client.get(path, headers=analyst).headers["Cache-Control"] == "no-store"


def test_a_cookie_copied_before_signing_out_opens_nothing_after(
    auth: Any, pages: Any, app: Flask,
) -> None:
    browser = auth.client("analyst")
    assert browser.get("/dashboard").status_code == 200
    copied = browser.get_cookie("touchlink_session", domain="go.test")
    assert copied is not None

    assert pages.post_form(browser, "/signout", {}, form_page="/dashboard").status_code == 302
    thief = app.test_client()
    thief.set_cookie(copied.key, copied.value, domain="go.test")

    replayed = thief.get("/dashboard")
    assert replayed.status_code == 302
    assert "/signin" in replayed.headers["Location"]


def test_a_chunked_body_over_the_limit_is_a_413_not_a_body_cut_short(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
) -> None:
    # A server that ends the body itself (`wsgi.input_terminated`, as granian does) and no
    # Content-Length: Werkzeug would read 1 MiB of it and parse that.
    big = json.dumps({"url": "https://shop.example.com/", "touchpoint": "store-flyer",
                      "stage": "awareness", "title": "x" * (2 * 1024 * 1024)}).encode()
    environ = {"wsgi.input": io.BytesIO(big), "wsgi.input_terminated": True}

    response = client.post(LINKS, headers={**marketer, "Content-Type": "application/json"},
                           environ_overrides=environ)

    assert response.status_code == 413
    assert response.get_json()["error"]["code"]
