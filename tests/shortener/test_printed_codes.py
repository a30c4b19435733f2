"""Printed codes never die: a renamed slug keeps leading to its link, a slug is the same slug
whatever its letter case, and a retired link can send its customers somewhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

import migrations
from analytics.models import Click
from tests.shortener.conftest import ErrorCheck, LinkMaker

LINKS = "/api/v1/links"
FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()


def _clicks_of(session: Session, link_id: int) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).where(Click.link_id == link_id)) or 0


def test_a_renamed_slug_keeps_leading_to_its_link_and_counts_there(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any], clicks: Any,
    session: Session, cli: FlaskCliRunner,
) -> None:
    clicks.send(client, "spring", 2)  # the flyer is printed and scanned
    renamed = client.patch(f"{LINKS}/{link['id']}", json={"slug": "spring-26"}, headers=marketer)
    assert renamed.status_code == 200

    clicks.send(client, "spring", 3)  # the code on the flyer, after the rename
    clicks.send(client, "spring-26", 1)

    assert _clicks_of(session, link["id"]) == 6
    old = client.get("/spring")
    assert old.headers["Location"] == client.get("/spring-26").headers["Location"]
    shown = cli.invoke(args=["links", "show", "spring"])  # found by the slug on the flyer
    assert shown.exit_code == 0, shown.output
    assert "go.test/spring-26" in shown.output


def test_no_other_link_takes_a_slug_a_link_gave_up_but_the_link_itself_may(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any], new_link: LinkMaker,
    expect_error: ErrorCheck,
) -> None:
    client.patch(f"{LINKS}/{link['id']}", json={"slug": "summer"}, headers=marketer)
    other = new_link(slug="autumn")

    created = client.post(LINKS, json={
        "url": "https://shop.example.com/", "touchpoint": "store-flyer", "stage": "awareness",
        "slug": "Spring",
    }, headers=marketer)
    renamed = client.patch(f"{LINKS}/{other['id']}", json={"slug": "spring"}, headers=marketer)

    for response in (created, renamed):
        error = expect_error(response, 409, "slug_retired")
        assert error["details"] == {
            "field": "slug", "slug": error["details"]["slug"], "domain": "go.test",
            "link_id": link["id"],
        }
        assert "codes printed with it still lead there" in error["message"]
    back = client.patch(f"{LINKS}/{link['id']}", json={"slug": "spring"}, headers=marketer)
    assert back.status_code == 200
    # /summer now is the old one, still leading here; /spring is the link's own again.
    assert client.get("/summer").headers["Location"] == client.get("/spring").headers["Location"]
    expect_error(
        client.patch(f"{LINKS}/{other['id']}", json={"slug": "summer"}, headers=marketer),
        409, "slug_retired",
    )


def test_slugs_that_differ_only_in_case_are_one_slug(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any],
    expect_error: ErrorCheck, new_link: LinkMaker,
) -> None:
    taken = client.post(LINKS, json={
        "url": "https://shop.example.com/", "touchpoint": "store-flyer", "stage": "awareness",
        "slug": "SPRING",
    }, headers=marketer)

    expect_error(taken, 409, "slug_taken")
    for typed in ("SPRING", "Spring", "sPrInG"):  # typed from a poster
        response = client.get(f"/{typed}")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("https://shop.example.com/spring?")
    other = new_link(slug="Lyon")
    assert other["slug"] == "Lyon"  # kept as written
    assert client.get("/lyon").status_code == 302


def test_a_bulk_import_refuses_a_slug_taken_in_another_case_or_given_up(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any], new_link: LinkMaker,
) -> None:
    client.patch(f"{LINKS}/{link['id']}", json={"slug": "summer"}, headers=marketer)
    new_link(slug="autumn")
    rows = [
        {"url": "https://shop.example.com/a", "touchpoint": "store-flyer", "stage": "awareness",
         "slug": slug}
        for slug in ("AUTUMN", "Spring", "winter", "WINTER")
    ]

    response = client.post(f"{LINKS}/bulk", json={"rows": rows}, headers=marketer)

    assert response.status_code in (200, 201), response.get_json()
    results = response.get_json()["results"]
    assert [r.get("error", {}).get("code") for r in results] == [
        "slug_taken", "slug_retired", None, "slug_taken"
    ]
    assert client.get("/Winter").status_code == 302


def test_a_retired_link_sends_customers_to_its_fallback_or_tells_them_it_ended(
    client: FlaskClient, marketer: dict[str, str], new_link: LinkMaker,
    expire_link: Callable[[int], None], marketer_client: FlaskClient,
) -> None:
    kept = new_link(slug="sale", fallback_url="https://shop.example.com/offers")
    plain = new_link(slug="promo", expires_at=FUTURE)
    client.delete(f"{LINKS}/{kept['id']}", headers=marketer)
    expire_link(plain["id"])

    sent = client.get("/sale")
    ended = marketer_client.get("/promo")  # even for a signed-in marketer, as a customer sees it

    assert (sent.status_code, sent.headers["Location"]) == (302, "https://shop.example.com/offers")
    assert ended.status_code == 410
    page = ended.get_data(as_text=True)
    assert "This link has ended" in page
    assert "Touchlink" not in page  # the customer's page speaks of the link, not of us
    assert kept["fallback_url"] is None or kept["fallback_url"] == "https://shop.example.com/offers"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"fallback_url": "javascript:alert(1)"}, "fallback_url"),
        ({"fallback_url": "https://go.test/other"}, "fallback_url"),  # a loop through us
    ],
)
def test_a_past_expiry_or_a_bad_fallback_is_a_422(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any],
    link: dict[str, Any], expect_error: ErrorCheck, fields: dict[str, str], field: str,
) -> None:
    body = {"url": "https://shop.example.com/", "touchpoint": "store-flyer",
            "stage": "awareness", **fields}

    for response in (
        client.post(LINKS, json=body, headers=marketer),
        client.patch(f"{LINKS}/{link['id']}", json=fields, headers=marketer),
    ):
        error = expect_error(response, 422)
        assert error["details"]["field"] == field


def test_an_archived_links_page_offers_no_code_to_print_and_shows_its_old_slugs(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any],
    marketer_client: FlaskClient, pages: Any,
) -> None:
    client.patch(f"{LINKS}/{link['id']}", json={"slug": "spring-26"}, headers=marketer)
    live = pages.text(marketer_client.get(f"/links/{link['id']}"))
    client.delete(f"{LINKS}/{link['id']}", headers=marketer)
    archived = pages.text(marketer_client.get(f"/links/{link['id']}"))

    assert "Download SVG" in live and "Download SVG" not in archived
    assert "data-no-download" in archived
    assert "/spring" in live and "Codes printed with them still lead here." in live
    edit = pages.text(marketer_client.get(f"/links/{link['id']}/edit"))
    assert "Codes already printed carry" in edit


def test_the_migration_refuses_slugs_that_differ_only_in_case_and_lists_them(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrations.upgrade(engine, "0010")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO touchpoints (id, key, name, channel, archived, created_at) "
            "VALUES (1, 'flyer', 'Flyer', 'physical', 0, CURRENT_TIMESTAMP)"
        ))
        connection.execute(text(
            "INSERT INTO stages (id, key, name, position) VALUES (1, 'awareness', 'Awareness', 1)"
        ))
        for i, slug in enumerate(("Sale", "sale", "other"), start=1):
            connection.execute(text(
                "INSERT INTO links (id, domain, slug, destination, touchpoint_id, stage_id, "
                "redirect_status, utm, track_conversions, archived, created_at, updated_at) "
                "VALUES (:id, 'go.test', :slug, 'https://shop.example.com/', 1, 1, 302, 1, 0, 0, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ), {"id": i, "slug": slug})

    with pytest.raises(RuntimeError) as refused:
        migrations.upgrade(engine)

    assert "go.test: Sale (link 1), sale (link 2)" in str(refused.value)
    assert "other" not in str(refused.value)
    assert migrations.current_revision(engine) == "0010"
    with engine.begin() as connection:
        connection.execute(text("UPDATE links SET slug = 'sale-2' WHERE id = 2"))
    migrations.upgrade(engine)
    with engine.connect() as connection:
        keys = connection.execute(text("SELECT slug_key FROM links ORDER BY id")).scalars().all()
    assert keys == ["sale", "sale-2", "other"]
    engine.dispose()


def test_a_destination_or_fallback_on_a_domain_added_since_start_is_refused(
    client: FlaskClient, admin: dict[str, str], marketer: dict[str, str],
    touchpoint: dict[str, Any], expect_error: ErrorCheck,
) -> None:
    added = client.post("/api/v1/domains", json={"host": "lnk.brand.test"}, headers=admin)
    assert added.status_code == 201, added.get_json()

    for field in ("url", "fallback_url"):
        body = {"url": "https://shop.example.com/", "touchpoint": "store-flyer",
                "stage": "awareness", field: "https://LNK.brand.test/spring"}
        error = expect_error(client.post(LINKS, json=body, headers=marketer), 422)
        assert error["details"]["field"] == field
