"""Branded short domains: each host serves only its own links, a Host that is none of ours gets
a 404, and links, short URLs and codes carry their own domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from analytics.runtime import runtime
from shortener import domains
from shortener.models import Link
from shortener.openapi import document
from shortener.unit_of_work import transaction
from tests.documented import checked

Headers = dict[str, str]
ErrorCheck = Callable[..., dict[str, Any]]
BRAND = "go.brand.test"


def add_domain(client: FlaskClient, admin: Headers, **fields: Any) -> Any:
    return client.post("/api/v1/domains", json=fields, headers=admin)


def make_link(client: FlaskClient, marketer: Headers, slug: str, url: str, **fields: Any) -> Any:
    return client.post("/api/v1/links", headers=marketer, json={
        "url": url, "touchpoint": "store-flyer", "stage": "awareness", "slug": slug, **fields,
    })


def follow(client: FlaskClient, slug: str, host: str) -> Any:
    return client.get(f"/{slug}", headers={"Host": host})


@pytest.fixture
def brand(client: FlaskClient, admin: Headers) -> dict[str, Any]:
    response = add_domain(client, admin, host=BRAND, fallback_url="https://brand.example.com/")
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[return-value]


def test_two_domains_serve_only_their_own_links(
    client: FlaskClient, marketer: Headers, touchpoint: Any, brand: Any
) -> None:
    ours = make_link(client, marketer, "spring", "https://shop.example.com/ours")
    theirs = make_link(client, marketer, "spring", "https://brand.example.com/spring",
                       domain=BRAND.upper())
    only_brand = make_link(client, marketer, "fall", "https://brand.example.com/fall",
                           domain=BRAND)
    assert [r.status_code for r in (ours, theirs, only_brand)] == [201, 201, 201]
    assert ours.json["short_url"] == "http://go.test/spring"
    assert theirs.json["short_url"] == f"http://{BRAND}/spring"
    assert theirs.json["qr_svg"].endswith(f"/api/v1/links/{theirs.json['id']}/qr.svg")

    assert follow(client, "spring", "go.test").location.startswith("https://shop.example.com/ours")
    for host in (BRAND, "GO.Brand.Test.", f"{BRAND}:8080"):
        assert follow(client, "spring", host).location.startswith(
            "https://brand.example.com/spring"
        ), host
    assert follow(client, "fall", "go.test").status_code == 404  # never another domain's link
    for host in ("evil.test", "go.test.evil.test", "", "bad host", "[::1]:x"):
        response = follow(client, "spring", host)
        assert response.status_code in (400, 404), host
        assert "Location" not in response.headers


def test_an_unknown_slug_on_a_domain_with_a_fallback_goes_there(
    client: FlaskClient, brand: Any
) -> None:
    response = follow(client, "no-such-code", BRAND)
    assert response.status_code == 302
    assert response.location == "https://brand.example.com/"
    assert follow(client, "no-such-code", "go.test").status_code == 404


def test_the_api_lists_makes_default_moves_and_removes_domains(
    client: FlaskClient, admin: Headers, marketer: Headers, touchpoint: Any, brand: Any,
    expect_error: ErrorCheck,
) -> None:
    listed = client.get("/api/v1/domains", headers=admin).json
    assert [(d["host"], d["default"]) for d in listed["items"]] == [("go.test", True),
                                                                   (BRAND, False)]
    made = make_link(client, marketer, "spring", "https://shop.example.com/")
    assert made.json["short_url"] == "http://go.test/spring"

    expect_error(client.delete("/api/v1/domains/go.test", headers=admin), 409, "conflict")
    response = client.patch(f"/api/v1/domains/{BRAND}", json={"default": True}, headers=admin)
    assert response.status_code == 200 and response.json["default"] is True
    newer = make_link(client, marketer, "summer", "https://shop.example.com/")
    assert newer.json["short_url"] == f"http://{BRAND}/summer"

    # go.test keeps its link: printed codes carry it; it goes once its links are moved.
    expect_error(client.delete("/api/v1/domains/go.test", headers=admin), 409, "conflict")
    moved = client.post("/api/v1/domains/go.test/move", json={"to": BRAND}, headers=admin)
    assert moved.status_code == 200 and moved.json == {"moved": 1}
    assert follow(client, "spring", BRAND).status_code == 302
    assert client.delete("/api/v1/domains/go.test", headers=admin).status_code == 204
    assert [d["host"] for d in client.get("/api/v1/domains", headers=admin).json["items"]] == [
        BRAND
    ]


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"host": "https://go.example.com/"}, 422, "invalid_field", "host"),
        ({"host": "go example.com"}, 422, "invalid_field", "host"),
        ({"host": "nodots"}, 422, "invalid_field", "host"),
        ({"host": "go.example.com:99999"}, 422, "invalid_field", "host"),
        ({"host": ""}, 422, "invalid_field", "host"),
        ({"host": 7}, 422, "invalid_field", "host"),
        ({"host": "go.example.com", "fallback_url": "ftp://x"}, 422, "invalid_field",
         "fallback_url"),
        ({"host": "go.example.com", "colour": "red"}, 422, "invalid_field", "colour"),
        ({"host": "GO.TEST."}, 409, "conflict", "host"),
    ],
)
def test_a_bad_or_taken_domain_is_refused_naming_the_field(
    client: FlaskClient, admin: Headers, expect_error: ErrorCheck, fields: dict[str, Any],
    status: int, code: str, field: str,
) -> None:
    expect_error(add_domain(client, admin, **fields), status, code, field=field)


def test_the_answers_are_those_the_document_describes(
    app: Flask, client: FlaskClient, admin: Headers, brand: Any
) -> None:
    spec = document(app)

    def check(path: str, method: str, response: TestResponse, status: int) -> None:
        assert response.status_code == status, response.get_json()
        checked(spec, path, method, response)

    one = f"/api/v1/domains/{BRAND}"
    check("/api/v1/domains", "get", client.get("/api/v1/domains", headers=admin), 200)
    check("/api/v1/domains", "post", add_domain(client, admin, host="go.other.test"), 201)
    check("/api/v1/domains/{host}", "patch", client.patch(
        one, json={"default": True, "fallback_url": None}, headers=admin), 200)
    check("/api/v1/domains/{host}/move", "post", client.post(
        "/api/v1/domains/go.test/move", json={"to": BRAND}, headers=admin), 200)
    check("/api/v1/domains/{host}", "patch", client.patch(
        one, json={"default": False}, headers=admin), 409)
    check("/api/v1/domains/{host}/move", "post", client.post(
        f"{one}/move", json={"to": BRAND, "from": "go.test"}, headers=admin), 422)
    assert client.delete("/api/v1/domains/go.test", headers=admin).status_code == 204


def test_domains_are_for_admins_and_a_link_names_only_ours(
    client: FlaskClient, marketer: Headers, touchpoint: Any, expect_error: ErrorCheck
) -> None:
    assert client.get("/api/v1/domains", headers=marketer).status_code == 403
    assert add_domain(client, marketer, host=BRAND).status_code == 403
    expect_error(make_link(client, marketer, "x1", "https://shop.example.com/", domain="evil.test"),
                 422, "unknown_reference", field="domain")


def test_the_commands_add_list_move_and_remove_domains(
    cli: FlaskCliRunner, client: FlaskClient, marketer: Headers, touchpoint: Any
) -> None:
    assert cli.invoke(args=["domains", "add", BRAND, "--default"]).exit_code == 0
    listing = cli.invoke(args=["domains", "list"]).output
    assert listing.splitlines()[0].split() == [BRAND, "default"]
    assert make_link(client, marketer, "spring", "https://shop.example.com/").json[
        "short_url"] == f"http://{BRAND}/spring"
    refused = cli.invoke(args=["domains", "add", "not a host"])
    assert refused.exit_code != 0 and "host" in refused.output
    assert cli.invoke(args=["domains", "move", BRAND, "go.test"]).exit_code == 0
    assert cli.invoke(args=["domains", "default", "go.test"]).exit_code == 0
    assert cli.invoke(args=["domains", "remove", BRAND]).exit_code == 0
    assert follow(client, "spring", "go.test").status_code == 302


def test_a_new_port_in_the_base_url_keeps_the_links_and_a_new_host_says_how_to_move_them(
    app: Flask, client: FlaskClient, marketer: Headers, touchpoint: Any, session: Session
) -> None:
    assert make_link(client, marketer, "spring", "https://shop.example.com/").status_code == 201
    rt = runtime(app)
    with transaction(rt.sessions) as writing:
        said = domains.seed(writing, "go.test:8080", ())
    rt.domains.forget()  # as a restart with the new base URL does
    assert said == ["The short domain go.test is now go.test:8080; its 1 links moved with it."]
    assert session.scalar(select(Link.domain).where(Link.slug == "spring")) == "go.test:8080"
    assert follow(client, "spring", "go.test:8080").status_code == 302

    with transaction(rt.sessions) as writing:
        said = domains.seed(writing, "links.brand.test", ())
        assert domains.default_host(writing) == "links.brand.test"
    assert said == ["New links now go on links.brand.test. The 1 links on go.test:8080 stay "
                    "there (still served); `touchlink domains move go.test:8080 "
                    "links.brand.test` moves them."]
    assert follow(client, "spring", "go.test").status_code == 302


def test_a_bulk_import_goes_on_the_domain_it_names_and_refuses_rows_naming_another(
    client: FlaskClient, marketer: Headers, touchpoint: Any, brand: Any
) -> None:
    row = {"url": "https://brand.example.com/a", "touchpoint": "store-flyer", "stage": "awareness"}
    response = client.post(f"/api/v1/links/bulk?domain={BRAND}", headers=marketer, json={
        "rows": [{**row, "slug": "a1"}, {**row, "slug": "a2", "domain": "go.test"}],
    })
    assert response.status_code == 200, response.json
    first, second = response.json["results"]
    assert first["link"]["short_url"] == f"http://{BRAND}/a1"
    assert second["error"]["details"] == {"field": "domain"}
    assert follow(client, "a1", BRAND).status_code == 302
    assert follow(client, "a1", "go.test").status_code == 404
