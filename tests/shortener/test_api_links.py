"""The links API through the real path: HTTP request → rows → response → redirect."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shortener.models import Link
from shortener.slugs import ALPHABET

ErrorCheck = Callable[..., dict[str, Any]]
LinkMaker = Callable[..., dict[str, Any]]
AppMaker = Callable[..., Flask]

LINKS = "/api/v1/links"


def test_creating_a_link_answers_201_with_the_documented_shape(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session
) -> None:
    response = client.post(
        LINKS,
        json={
            "url": "https://shop.example.com/spring?ref=flyer",
            "touchpoint": "store-flyer",
            "stage": "consideration",
            "slug": "spring",
            "campaign": "spring-launch",
        },
        headers=marketer,
    )

    assert response.status_code == 201
    body = response.get_json()
    assert {
        "id", "slug", "domain", "short_url", "url", "touchpoint", "stage", "campaign",
        "redirect_status", "created_at", "archived",
    } <= set(body)
    assert body["slug"] == "spring"
    assert body["domain"] == "go.test"
    assert body["short_url"] == "http://go.test/spring"
    assert body["url"] == "https://shop.example.com/spring?ref=flyer"
    assert body["touchpoint"] == "store-flyer"
    assert body["stage"] == "consideration"
    assert body["campaign"] == "spring-launch"
    assert body["redirect_status"] == 302
    assert body["archived"] is False
    created_at = datetime.fromisoformat(body["created_at"])
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)

    row = session.get(Link, body["id"])
    assert row is not None
    assert (row.domain, row.slug, row.destination) == (
        "go.test", "spring", "https://shop.example.com/spring?ref=flyer"
    )
    assert (row.touchpoint.key, row.stage.key, row.campaign) == (
        "store-flyer", "consideration", "spring-launch"
    )


def test_a_link_without_a_slug_gets_a_random_unambiguous_one(
    client: FlaskClient, new_link: LinkMaker
) -> None:
    slugs = {new_link()["slug"] for _ in range(5)}

    assert len(slugs) == 5
    for slug in slugs:
        assert len(slug) >= 7
        assert set(slug) <= set(ALPHABET)
        assert not set(slug) & set("0O1lIo")
        assert client.get(f"/{slug}").status_code == 302


def test_the_destination_is_stored_as_a_browser_would_request_it(new_link: LinkMaker) -> None:
    link = new_link(url="HTTPS://Shop.Example.COM./café?q=ü")

    assert link["url"] == "https://shop.example.com/caf%C3%A9?q=%C3%BC"


# --- list ---------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(
    client: FlaskClient, marketer: dict[str, str], new_link: LinkMaker
) -> dict[str, dict[str, Any]]:
    response = client.post(
        "/api/v1/touchpoints",
        json={"key": "newsletter", "name": "Newsletter", "channel": "digital"},
        headers=marketer,
    )
    assert response.status_code == 201
    return {
        "flyer-spring": new_link(slug="flyer-spring", campaign="spring",
                                 url="https://shop.example.com/spring"),
        "flyer-help": new_link(slug="flyer-help", stage="support",
                               url="https://help.example.com/Returns", title="Returns desk"),
        "news-spring": new_link(slug="news-spring", touchpoint="newsletter", campaign="spring",
                                url="https://shop.example.com/new-in"),
        "news-care": new_link(slug="news-care", touchpoint="newsletter", stage="post-purchase",
                              url="https://shop.example.com/care_guide?discount=50%25"),
    }


def _listed(client: FlaskClient, headers: dict[str, str], query: str = "") -> list[str]:
    response = client.get(f"{LINKS}?{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return [item["slug"] for item in response.get_json()["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["news-care", "news-spring", "flyer-help", "flyer-spring"]),
        ("touchpoint=newsletter", ["news-care", "news-spring"]),
        ("stage=awareness", ["news-spring", "flyer-spring"]),
        ("campaign=spring", ["news-spring", "flyer-spring"]),
        ("touchpoint=store-flyer&stage=support", ["flyer-help"]),
        ("touchpoint=newsletter&campaign=spring", ["news-spring"]),
        ("q=SPRING", ["news-spring", "flyer-spring"]),
        ("q=returns", ["flyer-help"]),
        ("q=help.example", ["flyer-help"]),
        ("q=care_", ["news-care"]),
        ("q=50%25", ["news-care"]),
        ("q=_", ["news-care"]),
        ("q=%25", ["news-care"]),
        ("touchpoint=nobody", []),
        ("stage=nowhere", []),
    ],
)
def test_links_are_listed_newest_first_and_filtered(
    client: FlaskClient,
    analyst: dict[str, str],
    catalogue: dict[str, dict[str, Any]],
    query: str,
    expected: list[str],
) -> None:
    assert _listed(client, analyst, query) == expected


def test_cursor_pagination_visits_every_link_exactly_once(
    client: FlaskClient, analyst: dict[str, str], new_link: LinkMaker
) -> None:
    created = [new_link(slug=f"page-{n}")["id"] for n in range(7)]

    seen: list[int] = []
    pages = 0
    url = f"{LINKS}?limit=3"
    while True:
        response = client.get(url, headers=analyst)
        assert response.status_code == 200
        body = response.get_json()
        pages += 1
        assert len(body["items"]) <= 3
        seen.extend(item["id"] for item in body["items"])
        if body["next_cursor"] is None:
            break
        url = f"{LINKS}?limit=3&cursor={body['next_cursor']}"

    assert pages == 3
    assert seen == sorted(created, reverse=True)


def test_pagination_keeps_the_filters(
    client: FlaskClient, analyst: dict[str, str], new_link: LinkMaker
) -> None:
    for n in range(5):
        new_link(slug=f"a-{n}", campaign="a")
        new_link(slug=f"b-{n}", campaign="b")

    first = client.get(f"{LINKS}?campaign=a&limit=3", headers=analyst).get_json()
    cursor = first["next_cursor"]
    second = client.get(f"{LINKS}?campaign=a&limit=3&cursor={cursor}", headers=analyst).get_json()

    slugs = [item["slug"] for item in first["items"] + second["items"]]
    assert slugs == [f"a-{n}" for n in reversed(range(5))]
    assert second["next_cursor"] is None


def test_archived_links_are_listed_only_when_asked(
    client: FlaskClient, analyst: dict[str, str], marketer: dict[str, str], new_link: LinkMaker
) -> None:
    kept = new_link(slug="kept")
    gone = new_link(slug="gone")
    assert client.delete(f"{LINKS}/{gone['id']}", headers=marketer).status_code == 200

    assert _listed(client, analyst) == [kept["slug"]]
    assert _listed(client, analyst, "archived=include") == ["gone", "kept"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("cursor=garbage", "cursor"),
        ("cursor=aWQ6eA", "cursor"),  # "id:x"
        ("cursor=aWQ6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "cursor"),  # a number past any id
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("q=%00", "q"),
        ("campaign=a%00b", "campaign"),
        ("touchpoint=x%00", "touchpoint"),
    ],
)
def test_bad_list_parameters_are_a_400_naming_the_parameter(
    client: FlaskClient,
    analyst: dict[str, str],
    new_link: LinkMaker,
    expect_error: ErrorCheck,
    query: str,
    parameter: str,
) -> None:
    new_link()
    response = client.get(f"{LINKS}?{query}", headers=analyst)

    expect_error(response, 400, parameter=parameter)


# --- get ----------------------------------------------------------------------------------------


def test_a_link_is_read_back_by_id(
    client: FlaskClient, analyst: dict[str, str], link: dict[str, Any]
) -> None:
    response = client.get(f"{LINKS}/{link['id']}", headers=analyst)

    assert response.status_code == 200
    assert response.get_json() == link


def test_an_unknown_link_is_a_json_404(
    client: FlaskClient, analyst: dict[str, str], expect_error: ErrorCheck, unknown_link_id: int
) -> None:
    for link_id in (str(unknown_link_id), "99999999999999999999999999"):
        for path in (f"{LINKS}/{link_id}", f"{LINKS}/{link_id}/qr.png"):
            expect_error(client.get(path, headers=analyst), 404, "not_found")


# --- update -------------------------------------------------------------------------------------


def test_patching_the_url_and_stage_changes_the_redirect_at_once(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any], session: Session
) -> None:
    assert client.get("/spring").status_code == 302  # now cached

    response = client.patch(
        f"{LINKS}/{link['id']}",
        json={"url": "https://shop.example.com/summer", "stage": "decision"},
        headers=marketer,
    )

    assert response.status_code == 200
    body = response.get_json()
    assert (body["url"], body["stage"], body["slug"]) == (
        "https://shop.example.com/summer", "decision", "spring"
    )
    assert body["campaign"] == "spring-launch"  # fields not sent are kept
    row = session.get(Link, link["id"])
    assert row is not None
    assert (row.destination, row.stage.key) == ("https://shop.example.com/summer", "decision")
    assert client.get("/spring").headers["Location"].startswith("https://shop.example.com/summer?")


def test_changing_the_slug_serves_the_new_one_at_once_and_keeps_the_old_one_leading_there(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any]
) -> None:
    assert client.get("/spring").status_code == 302  # cached as found
    assert client.get("/summer").status_code == 404  # cached as missing

    response = client.patch(f"{LINKS}/{link['id']}", json={"slug": "summer"}, headers=marketer)

    assert response.status_code == 200
    assert response.get_json()["short_url"] == "http://go.test/summer"
    for slug in ("summer", "spring"):  # the old one is on printed codes: it still leads there
        followed = client.get(f"/{slug}")
        assert followed.status_code == 302
        assert followed.headers["Location"].startswith("https://shop.example.com/spring?ref=flyer&")


def test_patching_to_a_taken_slug_is_a_409_and_changes_nothing(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any], new_link: LinkMaker,
    expect_error: ErrorCheck, session: Session,
) -> None:
    other = new_link(slug="autumn")

    response = client.patch(
        f"{LINKS}/{other['id']}", json={"slug": "spring", "campaign": "x"}, headers=marketer
    )

    expect_error(response, 409, "slug_taken", field="slug")
    row = session.get(Link, other["id"])
    assert row is not None
    assert (row.slug, row.campaign) == ("autumn", None)


@pytest.mark.parametrize(
    ("patch", "status", "code", "field"),
    [
        ({"url": "javascript:alert(1)"}, 422, "invalid_url", "url"),
        ({"url": "http://go.test/other"}, 422, "invalid_url", "url"),
        ({"url": None}, 422, "invalid_field", "url"),
        ({"stage": "nowhere"}, 422, "unknown_reference", "stage"),
        ({"touchpoint": "nobody"}, 422, "unknown_reference", "touchpoint"),
        ({"slug": "static"}, 422, "invalid_slug", "slug"),
        ({"redirect_status": 303}, 422, "invalid_field", "redirect_status"),
        ({"archived": "no"}, 422, "invalid_field", "archived"),
        ({"colour": "red"}, 422, "invalid_field", "colour"),
    ],
)
def test_a_bad_patch_is_refused_naming_the_field(
    client: FlaskClient,
    marketer: dict[str, str],
    link: dict[str, Any],
    expect_error: ErrorCheck,
    patch: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    response = client.patch(f"{LINKS}/{link['id']}", json=patch, headers=marketer)

    expect_error(response, status, code, field=field)
    assert client.get(f"{LINKS}/{link['id']}", headers=marketer).get_json() == link


def test_patching_an_unknown_link_is_a_404(
    client: FlaskClient, marketer: dict[str, str], expect_error: ErrorCheck, unknown_link_id: int
) -> None:
    response = client.patch(
        f"{LINKS}/{unknown_link_id}", json={"campaign": "x"}, headers=marketer
    )

    expect_error(response, 404, "not_found")


# --- delete and the redirect's statuses ---------------------------------------------------------


def test_deleting_a_link_archives_it_and_its_redirect_is_gone(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any], session: Session
) -> None:
    assert client.get("/spring").status_code == 302  # now cached

    response = client.delete(f"{LINKS}/{link['id']}", headers=marketer)

    assert response.status_code == 200
    assert response.get_json()["archived"] is True
    row = session.get(Link, link["id"])
    assert row is not None and row.archived is True
    assert client.get("/spring").status_code == 410
    assert client.get(f"{LINKS}/{link['id']}", headers=marketer).get_json()["archived"] is True


def test_an_archived_link_can_be_restored(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any]
) -> None:
    client.delete(f"{LINKS}/{link['id']}", headers=marketer)
    assert client.get("/spring").status_code == 410

    response = client.patch(f"{LINKS}/{link['id']}", json={"archived": False}, headers=marketer)

    assert response.status_code == 200
    assert client.get("/spring").status_code == 302


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_the_redirect_answers_with_the_links_status(
    client: FlaskClient, new_link: LinkMaker, status: int
) -> None:
    new_link(slug="moved", redirect_status=status, utm=False, url="https://example.com/new")

    response = client.get("/moved")

    assert response.status_code == status
    assert response.headers["Location"] == "https://example.com/new"


def test_a_link_without_utm_redirects_to_the_destination_untouched(
    client: FlaskClient, new_link: LinkMaker
) -> None:
    created = new_link(slug="plain", utm=False, campaign="spring",
                       url="https://example.com/a?b=c#frag")

    assert created["utm"] is False
    assert client.get("/plain").headers["Location"] == "https://example.com/a?b=c#frag"


def test_a_link_with_utm_tags_the_destination_with_touchpoint_channel_and_campaign(
    client: FlaskClient, new_link: LinkMaker
) -> None:
    new_link(slug="tagged", campaign="spring", url="https://example.com/a#frag")

    assert client.get("/tagged").headers["Location"] == (
        "https://example.com/a?utm_source=store-flyer&utm_medium=physical"
        "&utm_campaign=spring#frag"
    )


def test_an_expired_link_is_gone_and_an_unexpired_one_redirects(
    client: FlaskClient, new_link: LinkMaker, expire_link: Callable[[int], None]
) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    expire_link(new_link(slug="over", expires_at=future)["id"])
    created = new_link(slug="still-on", expires_at=future)

    assert client.get("/over").status_code == 410
    assert client.get("/still-on").status_code == 302
    assert datetime.fromisoformat(created["expires_at"]) == datetime.fromisoformat(future)


def test_an_expiry_without_an_offset_is_taken_as_utc(new_link: LinkMaker) -> None:
    created = new_link(expires_at="2031-05-01T12:00:00")

    assert datetime.fromisoformat(created["expires_at"]) == datetime(2031, 5, 1, 12, tzinfo=UTC)


# --- bad input ----------------------------------------------------------------------------------


def _post(client: FlaskClient, headers: dict[str, str], **fields: Any) -> Any:
    body = {"url": "https://shop.example.com/", "touchpoint": "store-flyer", "stage": "awareness"}
    body.update(fields)
    return client.post(LINKS, json={k: v for k, v in body.items() if v is not ...}, headers=headers)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://example.com/file",
        "//example.com/no-scheme",
        "/relative/path",
        "https://",
        "https://bank.com@evil.com",
        "https://user:pass@evil.com/",
        "https://exa mple.com/",
        " https://example.com/",
        "https://example.com/ ",
        "https://example.com/\tpage",
        "https://example.com/a\nb",
        "https://example.com/\x7f",
        "https://example.com\\@evil.com/",
        "https:\\\\evil.com",
        "https://example.com:99999/",
        "https://exa_mple..com/",
        pytest.param("https://" + "a" * 2040 + ".com/", id="long-host"),
        pytest.param("https://example.com/" + "a" * 2029, id="2049-chars"),
    ],
)
def test_a_bad_destination_is_a_422_naming_the_url(
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    session: Session,
    url: str,
) -> None:
    response = _post(client, marketer, url=url)

    expect_error(response, 422, field="url")
    assert session.scalar(select(func.count()).select_from(Link)) == 0


def test_a_url_of_exactly_the_maximum_length_is_accepted(
    client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any]
) -> None:
    url = "https://example.com/" + "a" * 2028
    assert len(url) == 2048

    assert _post(client, marketer, url=url).status_code == 201


@pytest.mark.parametrize(
    "url",
    [
        "http://go.test/other",
        "https://go.test",
        "https://GO.TEST./x",
        "http://Go.Test:80/x",
        "https://go.test:8443/x",
        "http://go%2Etest/x",
        "http://go.test%2E/x",
        "https://\uff47\uff4f\uff0e\uff54\uff45\uff53\uff54/x",  # fullwidth go.test
        "https://GO\u3002TEST/x",  # ideographic full stop
    ],
)
def test_a_destination_on_our_own_short_domain_is_refused(
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    url: str,
) -> None:
    error = expect_error(_post(client, marketer, url=url), 422, "invalid_url", field="url")

    assert "shortener" in error["message"]


@pytest.mark.parametrize(
    "url",
    [
        "https://xn--bcher-kva.test/x",
        "https://XN--BCHER-KVA.TEST./x",
        "https://bücher.test/x",
        "https://BÜCHER.test:443/x",
        "https://b%C3%BCcher.test/x",
    ],
)
def test_a_destination_on_a_branded_idn_short_domain_is_refused(
    make_app: AppMaker,
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    url: str,
) -> None:
    # Where bücher.test is someone else's, it is a fine destination; refused once it is ours.
    assert _post(client, marketer, url=url).status_code == 201
    branded = make_app(short_domains=("xn--bcher-kva.test",)).test_client()

    expect_error(_post(branded, marketer, url=url), 422, "invalid_url", field="url")


@pytest.mark.parametrize(
    "slug",
    ["with space", "a/b", "a.b", "naïve", "emoji-🙂", "%41", "x" * 65, "api", "API", "static",
     "health", "dashboard", "Dashboard", ""],
    ids=lambda slug: slug if len(slug) < 20 else f"{len(slug)}-chars",
)
def test_a_bad_or_reserved_slug_is_a_422_naming_the_slug(
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    slug: str,
) -> None:
    expect_error(_post(client, marketer, slug=slug), 422, field="slug")


def test_a_slug_of_64_characters_is_accepted(client: FlaskClient, new_link: LinkMaker) -> None:
    slug = "a-B_9" * 12 + "abcd"
    assert len(slug) == 64

    new_link(slug=slug)

    assert client.get(f"/{slug}").status_code == 302


def test_a_taken_slug_is_a_409(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any], expect_error: ErrorCheck,
    session: Session,
) -> None:
    error = expect_error(_post(client, marketer, slug="spring"), 409, "slug_taken", field="slug")

    assert "spring" in error["message"] and "go.test" in error["message"]
    assert session.scalar(select(func.count()).select_from(Link)) == 1


@pytest.mark.commits  # the requests race from threads, each on a connection of its own
def test_a_slug_raced_by_concurrent_requests_goes_to_exactly_one(
    app: Flask, marketer: dict[str, str], touchpoint: dict[str, Any], session: Session
) -> None:
    racers = 8
    barrier = threading.Barrier(racers)
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def race(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            LINKS,
            json={"url": f"https://example.com/{n}", "touchpoint": "store-flyer",
                  "stage": "awareness", "slug": "contested"},
            headers=marketer,
        )
        with lock:
            results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * (racers - 1), results
    assert all(body["error"]["code"] == "slug_taken" for status, body in results if status == 409)
    rows = session.scalars(select(Link).where(Link.slug == "contested")).all()
    assert len(rows) == 1
    winner = next(body for status, body in results if status == 201)
    assert rows[0].destination == winner["url"]


@pytest.mark.parametrize("field", ["touchpoint", "stage"])
def test_an_unknown_touchpoint_or_stage_is_a_422_unknown_reference(
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    field: str,
) -> None:
    error = expect_error(
        _post(client, marketer, **{field: "does-not-exist"}), 422, "unknown_reference", field=field
    )

    assert "does-not-exist" in error["message"]


@pytest.mark.parametrize("missing", ["url", "touchpoint", "stage"])
def test_a_missing_required_field_is_a_422_naming_it(
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    missing: str,
) -> None:
    expect_error(_post(client, marketer, **{missing: ...}), 422, field=missing)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("redirect_status", "302"),
        ("redirect_status", 302.0),
        ("redirect_status", 303),
        ("redirect_status", True),
        ("redirect_status", None),
        ("utm", "yes"),
        ("utm", 1),
        ("utm", None),
        ("url", 5),
        ("url", ["https://example.com/"]),
        ("url", None),
        ("touchpoint", 3),
        ("stage", {"key": "awareness"}),
        ("slug", ["a"]),
        ("slug", None),
        ("campaign", 7),
        pytest.param("campaign", "x" * 201, id="campaign-201-chars"),
        ("campaign", "spring\x07"),
        ("campaign", "line\nbreak"),
        ("title", False),
        ("expires_at", "tomorrow"),
        ("expires_at", 1700000000),
        ("expires_at", "2031-02-30T00:00:00"),
        ("expires_at", "0001-01-01T00:00:00+05:00"),
        ("expires_at", "9999-12-31T23:59:59-05:00"),
        ("expires_at", "1900-01-01T00:00:00Z"),
    ],
)
def test_a_field_of_the_wrong_type_is_a_422_naming_it(
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    session: Session,
    field: str,
    value: Any,
) -> None:
    expect_error(_post(client, marketer, **{field: value}), 422, field=field)
    assert session.scalar(select(func.count()).select_from(Link)) == 0


@pytest.mark.parametrize("field", ["colour", "archived", "id", "short_url"])
def test_an_unknown_field_is_a_422_naming_it(
    client: FlaskClient,
    marketer: dict[str, str],
    touchpoint: dict[str, Any],
    expect_error: ErrorCheck,
    field: str,
) -> None:
    expect_error(_post(client, marketer, **{field: False}), 422, "invalid_field", field=field)


def test_a_body_over_one_mebibyte_is_a_json_413(
    client: FlaskClient, marketer: dict[str, str], expect_error: ErrorCheck
) -> None:
    padding = " " * (1024 * 1024)
    response = client.post(
        LINKS,
        data=f'{{"url": "https://example.com/"{padding}}}',
        content_type="application/json",
        headers=marketer,
    )

    expect_error(response, 413)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("url=https://example.com/", "application/x-www-form-urlencoded"),
        ('{"url": "https://example.com/"}', "text/plain"),
        ('{"url": ', "application/json"),
        ("", "application/json"),
        ("null", "application/json"),
        ('["https://example.com/"]', "application/json"),
        ('"https://example.com/"', "application/json"),
        ("\xff\xfe{", "application/json"),
        pytest.param("[" * 100_000 + "]" * 100_000, "application/json", id="deeply-nested"),
        ('{"url": NaN}', "application/json"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(
    client: FlaskClient,
    marketer: dict[str, str],
    expect_error: ErrorCheck,
    data: str,
    content_type: str,
) -> None:
    response = client.post(LINKS, data=data, content_type=content_type, headers=marketer)

    expect_error(response, 400)


def test_nothing_reaches_the_database_with_a_nul_character(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any]
) -> None:
    # PostgreSQL refuses NUL in text; no such request may end in a 500.
    paths = [
        "/spr%00ing",
        "/api/v1/touchpoints/store%00flyer",
        f"{LINKS}?touchpoint=a%00",
        f"{LINKS}?stage=a%00",
        "/api/v1/touchpoints?channel=%00",
    ]
    for path in paths:
        response = client.get(path, headers=marketer)
        assert response.status_code in (400, 404), (path, response.status_code)


def test_edits_reach_the_redirect_at_once_through_the_redis_cache(
    redis_app: Flask, redis_client: Redis, marketer: dict[str, str]
) -> None:
    client = redis_app.test_client()
    client.post("/api/v1/touchpoints", json={"key": "poster", "name": "Poster",
                                             "channel": "physical"}, headers=marketer)
    created = client.post(LINKS, json={"url": "https://example.com/a", "touchpoint": "poster",
                                       "stage": "awareness", "slug": "autumn"}, headers=marketer)
    assert created.status_code == 201, created.get_json()
    assert client.get("/autumn").status_code == 302
    assert redis_client.exists("touchlink:link:go.test/autumn")

    response = client.patch(f"{LINKS}/{created.get_json()['id']}",
                            json={"slug": "winter", "url": "https://example.com/b"},
                            headers=marketer)

    assert response.status_code == 200
    assert not redis_client.exists("touchlink:link:go.test/autumn")
    winter = client.get("/winter")
    assert winter.status_code == 302
    assert winter.headers["Location"].startswith("https://example.com/b?")
    # The old slug is printed somewhere: it leads to the link as it is now, not as cached.
    assert client.get("/autumn").headers["Location"] == winter.headers["Location"]
