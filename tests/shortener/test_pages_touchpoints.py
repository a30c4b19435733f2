"""The touchpoint pages: list with stage coverage, exposure and last click, create, edit, archive,
and the placements that make up a touchpoint's exposure."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shortener.models import Placement, Touchpoint

NEW = {"key": "store-flyer-lyon", "name": "Store flyer, Lyon", "channel": "physical",
       "kind": "advertising", "exposure": "2,000"}
PLACEMENT = {"count": "2,000", "from": "2026-11-03", "to": "2026-11-09",
             "note": "Flyers handed out at the Lyon store"}
EDIT = "/touchpoints/store-flyer/edit"


@pytest.fixture
def placements_of(
    client: FlaskClient, marketer: dict[str, str]
) -> Callable[[str], list[dict[str, Any]]]:
    """The placements of a touchpoint, as the API lists them."""

    def listed(key: str) -> list[dict[str, Any]]:
        response = client.get(f"/api/v1/touchpoints/{key}/exposures", headers=marketer)
        assert response.status_code == 200, response.json
        items: list[dict[str, Any]] = response.json["items"]  # type: ignore[index]
        return items

    return listed


@pytest.fixture
def stored_touchpoint(session: Session) -> Callable[[str], Touchpoint | None]:
    """The touchpoint of `key` as the database has it now."""

    def find(key: str) -> Touchpoint | None:
        session.expire_all()  # forget what was loaded before the pages changed it
        return session.scalars(select(Touchpoint).where(Touchpoint.key == key)).one_or_none()

    return find


def test_a_touchpoint_made_on_the_page_is_stored_and_leads_on_to_its_first_link(
    marketer_client: FlaskClient, stored_touchpoint: Any, placements_of: Any, pages: Any
) -> None:
    response = pages.post_form(marketer_client, "/touchpoints/new", NEW)

    assert response.status_code == 302
    assert response.headers["Location"] == "/links/new?touchpoint=store-flyer-lyon"
    stored = stored_touchpoint("store-flyer-lyon")
    assert stored is not None
    assert (stored.name, stored.channel, stored.kind, stored.exposure) == (
        "Store flyer, Lyon", "physical", "advertising", 2000
    )
    follow = marketer_client.get(response.headers["Location"])
    assert 'value="store-flyer-lyon" selected' in pages.text(follow)
    # The exposure typed on creation is a first placement, dated today in the workspace's zone.
    [first] = placements_of("store-flyer-lyon")
    assert (first["count"], first["from"], first["to"]) == (
        2000, datetime.now(UTC).date().isoformat(), None
    )


def test_the_list_shows_channel_stage_coverage_links_and_last_click(
    marketer_client: FlaskClient, link: dict[str, Any], client: FlaskClient, clicks: Any,
    pages: Any,
) -> None:
    clicks.send(client, "spring", 1)

    page = pages.text(marketer_client.get("/touchpoints"))

    assert "Store flyer" in page
    assert "physical" in page
    assert 'class="on" title="Awareness: 1 link"' in page
    assert 'class="off" title="Decision: 0 links"' in page
    assert "none in 90 days" not in page  # the click is its last click
    assert " UTC" in page


def test_a_touchpoint_without_clicks_says_so(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    assert "none in 90 days" in pages.text(marketer_client.get("/touchpoints"))


def test_refused_input_is_shown_next_to_its_field_and_kept_in_the_form(
    marketer_client: FlaskClient, stored_touchpoint: Any, pages: Any
) -> None:
    bad_key = pages.post_form(marketer_client, "/touchpoints/new", {**NEW, "key": "Not A Key"})
    bad_exposure = pages.post_form(marketer_client, "/touchpoints/new", {**NEW, "exposure": "lots"})
    no_name = pages.post_form(marketer_client, "/touchpoints/new", {**NEW, "name": "  "})

    assert bad_key.status_code == 422
    assert pages.field_error(bad_key, "key").startswith("Must be lowercase letters")
    assert 'value="Store flyer, Lyon"' in pages.text(bad_key)
    assert bad_exposure.status_code == 422
    assert pages.field_error(bad_exposure, "exposure") == "Must be a whole number, like 5000"
    assert pages.field_error(no_name, "name") == "Must not be blank"
    assert stored_touchpoint("store-flyer-lyon") is None


def test_a_key_in_use_is_a_conflict_shown_on_the_form(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    response = pages.post_form(marketer_client, "/touchpoints/new", {**NEW, "key": "store-flyer"})

    assert response.status_code == 409
    assert pages.field_error(response, "key") == (
        "A touchpoint with key 'store-flyer' exists already."
    )


def test_editing_the_key_reaches_the_redirects_at_once(
    marketer_client: FlaskClient, client: FlaskClient, link: dict[str, Any],
    stored_touchpoint: Any, pages: Any,
) -> None:
    before = client.get("/spring")
    assert "utm_source=store-flyer&" in before.headers["Location"]  # now cached

    response = pages.post_form(
        marketer_client,
        EDIT,
        {"key": "flyer-2027", "name": "Store flyer 2027", "channel": "physical", "kind": ""},
    )

    assert response.status_code == 302
    stored = stored_touchpoint("flyer-2027")
    assert stored is not None and stored.kind is None
    assert stored.exposure == 500  # its placement stays
    assert "utm_source=flyer-2027&" in client.get("/spring").headers["Location"]


def test_editing_shows_the_current_values(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    page = pages.text(marketer_client.get(EDIT))

    assert 'value="Store flyer"' in page
    assert '<option value="physical" selected>' in page
    assert "Archive touchpoint" in page
    assert 'href="/dashboard/touchpoints/store-flyer">Analytics</a>' in page


# --- placements ----------------------------------------------------------------------------------


def _placement_rows(page: str) -> list[list[str]]:
    """The placements table: count, from, to and note of each row."""
    table = page[page.index('<table class="data placements">'):]
    body = table[table.index("<tbody>"):table.index("</tbody>")]
    return [
        [re.sub(r"\s+", " ", cell).strip() for cell in re.findall(r"<td[^>]*>([^<]*)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_the_edit_page_lists_the_placements_instead_of_editing_the_exposure(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], client: FlaskClient,
    marketer: dict[str, str], pages: Any,
) -> None:
    added = client.post("/api/v1/touchpoints/store-flyer/exposures", headers=marketer,
                        json={"count": 2000, "from": "2026-11-03", "to": "2026-11-09",
                              "note": "Lyon <week>"})
    assert added.status_code == 201

    page = pages.text(marketer_client.get(EDIT))

    assert 'name="exposure"' not in page  # the sum of the placements, not a field
    today = datetime.now(UTC).date().isoformat()
    assert sorted(_placement_rows(page)) == sorted([
        ["500", today, "—", ""],  # the exposure given on creation
        ["2,000", "2026-11-03", "2026-11-09", "Lyon &lt;week&gt;"],
    ])
    assert '<tfoot>\n      <tr><td class="num">2,500</td><td colspan="4">exposure' in page
    assert page.count('data-confirm="Delete this placement of') == 2
    assert f'name="from" type="date" value="{today}"' in page  # a new one starts today


def test_a_placement_added_on_the_page_counts_in_the_exposure(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], placements_of: Any,
    pages: Any,
) -> None:
    response = pages.post_form(
        marketer_client, "/touchpoints/store-flyer/placements", PLACEMENT, form_page=EDIT
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"{EDIT}#placements"
    added = [p for p in placements_of("store-flyer") if p["count"] == 2000]
    assert [(p["from"], p["to"], p["note"]) for p in added] == [
        ("2026-11-03", "2026-11-09", "Flyers handed out at the Lyon store")
    ]
    page = pages.text(marketer_client.get(response.headers["Location"]))
    assert "Placement of 2,000 added: the exposure is now 2,500." in page
    listed = pages.text(marketer_client.get("/touchpoints"))
    assert re.search(r'title="The sum of 2 placements">2,500</td>', listed)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"count": "lots"}, "count", "Must be a whole number, like 5000"),
        ({"count": "0"}, "count", "Must be between 1 and 2000000000"),
        ({"count": ""}, "count", "Is required: how many people it reached"),
        ({"from": ""}, "from", "Is required: the day it began (YYYY-MM-DD)"),
        ({"from": "03/11/2026"}, "from", "Must be a date (YYYY-MM-DD), not '03/11/2026'"),
        ({"to": "2026-11-01"}, "to", "Must not be before from (2026-11-03)"),
        ({"note": "x" * 201}, "note", "Must be at most 200 characters"),
    ],
)
def test_a_refused_placement_is_shown_next_to_its_field_and_nothing_is_stored(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], session: Session, pages: Any,
    changes: dict[str, str], field: str, message: str,
) -> None:
    response = pages.post_form(
        marketer_client, "/touchpoints/store-flyer/placements", {**PLACEMENT, **changes},
        form_page=EDIT,
    )

    assert response.status_code == 422
    assert pages.field_error(response, field) == message
    kept = {**PLACEMENT, **changes}
    if field != "count":
        assert 'name="count" type="text" value="2,000"' in pages.text(response)
    assert f'name="note" type="text" value="{kept["note"]}"' in pages.text(response)
    assert session.scalar(select(func.count()).select_from(Placement)) == 1  # the first only


def test_a_placement_is_deleted_with_its_button(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], placements_of: Any, pages: Any,
) -> None:
    [first] = placements_of("store-flyer")

    response = pages.post_form(
        marketer_client, f"/touchpoints/store-flyer/placements/{first['id']}/delete", {},
        form_page=EDIT,
    )

    assert response.status_code == 302
    assert placements_of("store-flyer") == []
    page = pages.text(marketer_client.get(response.headers["Location"]))
    assert "Placement of 500 deleted." in page
    assert "No placement yet" in page
    listed = pages.text(marketer_client.get("/touchpoints"))
    assert 'title="No placement recorded">—</td>' in listed


def test_deleting_no_such_placement_is_a_404_and_without_the_token_a_400(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], client: FlaskClient,
    marketer: dict[str, str], placements_of: Any, pages: Any,
) -> None:
    other = client.post("/api/v1/touchpoints", headers=marketer,
                        json={"key": "other", "name": "Other", "channel": "digital",
                              "exposure": 10})
    assert other.status_code == 201
    [theirs] = placements_of("other")
    [mine] = placements_of("store-flyer")

    for placement_id in (theirs["id"], 2_147_483_647, 99_999_999_999):
        response = pages.post_form(
            marketer_client, f"/touchpoints/store-flyer/placements/{placement_id}/delete", {},
            form_page=EDIT,
        )
        assert response.status_code == 404, placement_id
        assert response.mimetype == "text/html"
    unsigned = marketer_client.post(f"/touchpoints/store-flyer/placements/{mine['id']}/delete")
    assert unsigned.status_code == 400
    added = marketer_client.post("/touchpoints/store-flyer/placements", data=PLACEMENT)
    assert added.status_code == 400
    assert len(placements_of("store-flyer")) == 1 and len(placements_of("other")) == 1


def test_placements_are_for_marketers(
    auth: Any, touchpoint: dict[str, Any], pages: Any
) -> None:
    analyst = auth.client("analyst")

    response = pages.post_form(
        analyst, "/touchpoints/store-flyer/placements", PLACEMENT, form_page="/dashboard"
    )

    assert response.status_code == 403


def test_archiving_hides_a_touchpoint_until_restored(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], stored_touchpoint: Any,
    pages: Any,
) -> None:
    archived = pages.post_form(
        marketer_client, "/touchpoints/store-flyer/archive", {},
        form_page="/touchpoints/store-flyer/edit",
    )

    assert archived.status_code == 302
    stored = stored_touchpoint("store-flyer")
    assert stored is not None and stored.archived
    row = 'href="/links?touchpoint=store-flyer"'
    assert row not in pages.text(marketer_client.get("/touchpoints"))
    shown = pages.text(marketer_client.get("/touchpoints?archived=include"))
    assert row in shown and "Restore" in shown

    pages.post_form(marketer_client, "/touchpoints/store-flyer/restore", {},
              form_page="/touchpoints?archived=include")

    stored = stored_touchpoint("store-flyer")
    assert stored is not None and not stored.archived


def test_an_unknown_touchpoint_is_a_404_page(marketer_client: FlaskClient) -> None:
    response = marketer_client.get("/touchpoints/nope/edit")

    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_names_people_typed_are_escaped(
    marketer_client: FlaskClient, client: FlaskClient, marketer: dict[str, str], pages: Any
) -> None:
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    created = client.post(
        "/api/v1/touchpoints",
        json={"key": "evil", "name": name, "channel": "digital", "kind": "<b>kind</b>"},
        headers=marketer,
    )
    assert created.status_code == 201

    for path in ("/touchpoints", "/touchpoints/evil/edit", "/links/new"):
        page = pages.text(marketer_client.get(path))
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
        assert "&lt;script&gt;" in page, path


def test_the_pages_send_the_security_headers_and_no_inline_code(
    auth: Any, touchpoint: dict[str, Any], pages: Any
) -> None:
    client = auth.client("admin")
    for path in ("/touchpoints", "/touchpoints/new", EDIT, "/links", "/links/new", "/dashboard"):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "img-src 'self' data:" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "private, no-store"
        page = pages.text(response)
        assert "<style" not in page and " style=" not in page, path
        assert "<script>" not in page and " onclick=" not in page, path
        assert '<meta name="viewport"' in page


def test_every_refused_field_of_a_touchpoint_is_shown_at_once(
    marketer_client: FlaskClient, stored_touchpoint: Any, pages: Any
) -> None:
    form = {**NEW, "name": " ", "key": "Not A Key", "channel": "pigeon", "exposure": "lots"}

    response = pages.post_form(marketer_client, "/touchpoints/new", form)

    assert response.status_code == 422
    assert pages.field_error(response, "name") == "Must not be blank"
    assert pages.field_error(response, "key").startswith("Must be lowercase letters")
    assert pages.field_error(response, "channel").startswith("Must be one of")
    assert pages.field_error(response, "exposure") == "Must be a whole number, like 5000"
    page = pages.text(response)
    assert "The form could not be saved, for 4 reasons:" in page
    assert '<a href="#f-exposure">Exposure</a>' in page
    assert 'value="Not A Key"' in page and 'value="lots"' in page
    assert stored_touchpoint("store-flyer-lyon") is None


def test_a_key_in_use_is_shown_with_the_other_refusals(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    form = {**NEW, "key": "store-flyer", "exposure": "-3"}

    response = pages.post_form(marketer_client, "/touchpoints/new", form)

    assert response.status_code == 422
    assert pages.field_error(response, "key") == (
        "A touchpoint with key 'store-flyer' exists already."
    )
    assert pages.field_error(response, "exposure") == "Must be a whole number, like 5000"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Store flyer, Lyon", "store-flyer-lyon"),
        ("  Café de l'Opéra — Nantes ", "cafe-de-l-opera-nantes"),
        ("Instagram_bio 2026", "instagram-bio-2026"),
    ],
)
def test_a_blank_key_is_made_of_the_name(
    marketer_client: FlaskClient, stored_touchpoint: Any, pages: Any, name: str, key: str
) -> None:
    response = pages.post_form(
        marketer_client, "/touchpoints/new", {**NEW, "name": name, "key": ""}
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"/links/new?touchpoint={key}"
    stored = stored_touchpoint(key)
    assert stored is not None and stored.name == name.strip()


def test_a_name_without_letters_or_digits_leaves_the_key_to_be_typed(
    marketer_client: FlaskClient, pages: Any
) -> None:
    response = pages.post_form(
        marketer_client, "/touchpoints/new", {**NEW, "name": "★ ★ ★", "key": ""}
    )

    assert response.status_code == 422
    assert pages.field_error(response, "key") == "Must not be blank"


def test_the_new_form_asks_the_script_to_follow_the_name_and_the_edit_form_does_not(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    new = pages.text(marketer_client.get("/touchpoints/new"))
    edit = pages.text(marketer_client.get(EDIT))

    assert 'data-key-from="f-name"' in new
    assert "data-key-from" not in edit


def test_an_edit_shows_every_refusal(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any,
    stored_touchpoint: Any,
) -> None:
    form = {"key": "", "name": "", "channel": "digital", "kind": "k" * 65}

    response = pages.post_form(marketer_client, EDIT, form)

    assert response.status_code == 422
    assert pages.field_error(response, "key") == "Must not be blank"
    assert pages.field_error(response, "name") == "Must not be blank"
    assert pages.field_error(response, "kind") == "Must be at most 64 characters"
    kept = stored_touchpoint("store-flyer")
    assert kept is not None and kept.name == "Store flyer"


def test_every_refused_field_of_a_placement_is_shown_at_once(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    form = {"count": "many", "from": "03/11/2026", "to": "", "note": ""}

    response = pages.post_form(
        marketer_client, "/touchpoints/store-flyer/placements", form, form_page=EDIT
    )

    assert response.status_code == 422
    assert pages.field_error(response, "count") == "Must be a whole number, like 5000"
    assert pages.field_error(response, "from").startswith("Must be a date (YYYY-MM-DD)")


def test_the_list_searches_names_keys_and_kinds(
    marketer_client: FlaskClient, touchpoint: dict[str, Any], pages: Any
) -> None:
    pages.post_form(marketer_client, "/touchpoints/new", NEW)

    def found(query: dict[str, str]) -> list[str]:
        page = pages.text(marketer_client.get("/touchpoints", query_string=query))
        return re.findall(r'href="/touchpoints/([\w-]+)/edit"', page)

    assert found({}) == ["store-flyer", "store-flyer-lyon"]
    assert found({"q": "LYON"}) == ["store-flyer-lyon"]
    assert found({"q": "advertising"}) == ["store-flyer-lyon"]
    assert found({"q": "store-flyer"}) == ["store-flyer", "store-flyer-lyon"]
    assert found({"q": "nowhere"}) == []
    assert "No touchpoint matches “nowhere”" in pages.text(
        marketer_client.get("/touchpoints?q=nowhere")
    )
