"""Link-in-bio hubs through the real path: a hub made over the API, its page served at its short
URL (a view counted as a click of the hub's link), its buttons followed as clicks of their own
links, the clicks ingested by the worker and read back in the reports by link and by stage;
buttons that keep their links when the list changes; the avatar; and the refusals, in the one
JSON error shape."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from analytics.models import Click
from analytics.runtime import runtime
from analytics.stream import ClickStream
from analytics.worker import IngestWorker
from shortener.hubs_avatar import AVATAR_MAX_BYTES, AVATAR_SIDE
from shortener.hubs_input import MAX_BUTTONS
from shortener.openapi import document
from tests.documented import checked
from tests.user_agents import ANDROID, GOOGLEBOT, IPHONE

PAGE_LIMIT = 30 * 1024
BUTTONS = [
    {"label": "Shop the spring collection", "url": "https://shop.example.com/spring",
     "stage": "decision"},
    {"label": "Lookbook", "url": "https://shop.example.com/lookbook", "stage": "consideration"},
    {"label": "Our story", "url": "https://shop.example.com/about", "stage": "awareness"},
]
_HREF = re.compile(r'<a class="button" href="([^"]+)">')

HubMaker = Callable[..., dict[str, Any]]


def path_of(url: str) -> str:
    """The path and query of `url`, as the app sees them."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def image(kind: str = "PNG", side: int = 64, **save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 40, 90)).save(buffer, format=kind, **save)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Phone:
    """A customer's phone: its own cookie jar, address and user agent."""

    def __init__(self, app: Flask, ip: str, agent: str = IPHONE, **headers: str) -> None:
        self.client = app.test_client()
        self.ip = ip
        self.headers = {"User-Agent": agent, **headers}

    def open(self, url: str, method: str = "GET", *, referrer: str | None = None) -> TestResponse:
        """Open `url`; a tap on a page sends that page as the referrer, as a browser does."""
        headers = self.headers if referrer is None else {**self.headers, "Referer": referrer}
        return self.client.open(
            path_of(url), method=method, headers=headers, environ_base={"REMOTE_ADDR": self.ip},
        )


@pytest.fixture
def bio(client: FlaskClient, marketer: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/touchpoints",
        json={"key": "insta-bio", "name": "Instagram bio", "channel": "digital"},
        headers=marketer,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


@pytest.fixture
def make_hub(client: FlaskClient, marketer: dict[str, str], bio: dict[str, Any]) -> HubMaker:
    """`make_hub(**fields)`: a hub of the Instagram bio made over the API, as JSON."""

    def make(**fields: Any) -> dict[str, Any]:
        body = {"touchpoint": bio["key"], "title": "Maison Lune", **fields}
        response = client.post("/api/v1/hubs", json=body, headers=marketer)
        assert response.status_code == 201, response.get_json()
        made: dict[str, Any] = response.get_json()
        return made

    return make


def clicks_of(session: Session, link_id: int) -> list[Click]:
    session.expire_all()
    return list(session.scalars(select(Click).where(Click.link_id == link_id)))


# --- the page and its clicks, end to end --------------------------------------------------------


def test_a_hub_page_is_served_at_its_short_url_and_views_and_taps_are_counted_by_stage(
    make_app: Callable[..., Flask], redis_client: redis.Redis, redis_url: str,
    make_hub: HubMaker, analyst: dict[str, str], session: Session,
) -> None:
    hub = make_hub(stage="awareness", buttons=BUTTONS)
    web = make_app(redis_url=redis_url)
    anna, ben = Phone(web, "203.0.113.7"), Phone(web, "203.0.113.8", ANDROID)
    quiet = Phone(web, "198.51.100.4", DNT="1")
    crawler = Phone(web, "66.249.66.1", GOOGLEBOT)

    page = anna.open(hub["short_url"])

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert len(page.get_data()) < PAGE_LIMIT
    shown = page.get_data(as_text=True)
    shorts = [button["short_url"] for button in hub["buttons"]]
    assert _HREF.findall(shown) == shorts  # in order, each its own tracked link
    assert [b["stage"] for b in hub["buttons"]] == ["decision", "consideration", "awareness"]
    assert "Maison Lune" in shown and "<script" not in shown and "style=" not in shown
    policy = page.headers["Content-Security-Policy"]
    assert "style-src 'sha256-" in policy and "script-src" not in policy
    assert "'unsafe-inline'" not in policy and "default-src 'none'" in policy
    assert page.headers["Cache-Control"] == "private, no-store"
    for viewer in (ben, quiet, crawler):
        assert viewer.open(hub["short_url"]).status_code == 200

    shop, lookbook, _story = shorts
    taps = [phone.open(url, referrer=hub["short_url"]) for phone, url in (
        (anna, shop), (ben, shop), (ben, lookbook),
    )]
    for tap in taps:
        assert tap.status_code == 302
    assert anna.open(shop).headers["Location"].startswith("https://shop.example.com/spring?")
    assert clicks_of(session, hub["link"]["id"]) == []  # in the stream, not in SQL yet

    rt = runtime(web)
    assert rt.redis is not None
    rt.sink.flush()  # type: ignore[attr-defined]  # every click on the stream before it drains
    IngestWorker(
        ClickStream(rt.redis, rt.settings.stream, consumer="w1"), rt.sessions, rt.enricher,
        rt.metrics, zone=rt.settings.zone, journeys=rt.journey_keys,
    ).run(drain=True)

    views = clicks_of(session, hub["link"]["id"])
    assert sorted(click.is_bot for click in views) == [False, False, False, True]
    reports = web.test_client()
    detail = reports.get("/api/v1/reports/touchpoints/insta-bio", headers=analyst).get_json()
    by_link = {row["link"]["id"]: row for row in detail["links"]}
    button_ids = [b["link_id"] for b in hub["buttons"]]
    assert {
        link_id: (by_link[link_id]["clicks"], by_link[link_id]["bot_clicks"])
        for link_id in (hub["link"]["id"], *button_ids)
        if link_id in by_link
    } | {link_id: (0, 0) for link_id in button_ids if link_id not in by_link} == {
        hub["link"]["id"]: (3, 1), button_ids[0]: (3, 0), button_ids[1]: (1, 0),
        button_ids[2]: (0, 0),
    }
    assert detail["figures"]["clicks"] == 7  # 3 views and 4 taps by people; the crawler apart
    stages = reports.get("/api/v1/reports/stages", headers=analyst).get_json()
    assert {row["stage"]["key"]: row["clicks"] for row in stages["rows"]} == {
        "awareness": 3, "consideration": 1, "decision": 3, "post-purchase": 0, "support": 0,
    }


def test_a_view_is_counted_as_any_click_head_and_notrack_are_not(
    make_hub: HubMaker, app: Flask, session: Session
) -> None:
    hub = make_hub(buttons=BUTTONS[:1])
    phone = Phone(app, "203.0.113.7")

    head = phone.open(hub["short_url"], method="HEAD")
    notrack = phone.open(hub["short_url"] + "?notrack")
    scanned = phone.open(hub["short_url"] + "?qr=1")

    assert (head.status_code, head.get_data()) == (200, b"")
    assert notrack.status_code == 200 and scanned.status_code == 200
    assert [click.via_qr for click in clicks_of(session, hub["link"]["id"])] == [True]
    assert phone.open(hub["short_url"], method="POST").status_code == 405


def test_the_largest_hub_page_stays_under_30_kb(make_hub: HubMaker, app: Flask) -> None:
    buttons = [
        {"label": "&<>\"'" * 16, "url": f"https://shop.example.com/{'p' * 200}/{i}"}
        for i in range(MAX_BUTTONS)
    ]
    hub = make_hub(title="&" * 100, description="<" * 300, slug="s" * 64, buttons=buttons)

    page = Phone(app, "203.0.113.7").open(hub["short_url"])

    assert page.status_code == 200
    assert len(page.get_data()) < PAGE_LIMIT
    assert len(_HREF.findall(page.get_data(as_text=True))) == MAX_BUTTONS
    assert "&lt;" * 300 in page.get_data(as_text=True)  # escaped, like every label


def test_buttons_keep_their_links_when_kept_or_reordered_and_a_removed_ones_is_archived(
    make_hub: HubMaker, client: FlaskClient, marketer: dict[str, str], analyst: dict[str, str],
    app: Flask,
) -> None:
    hub = make_hub(buttons=BUTTONS)
    shop, lookbook, story = hub["buttons"]
    Phone(app, "203.0.113.7").open(shop["short_url"])

    response = client.put(
        f"/api/v1/hubs/{hub['id']}/buttons",
        json={"buttons": [
            {"id": story["id"], "label": "About us", "url": story["url"], "stage": "awareness"},
            {"label": "Lookbook", "url": lookbook["url"], "stage": "consideration"},  # no id
            {"label": "Sale", "url": "https://shop.example.com/sale", "stage": "decision"},
        ]},
        headers=marketer,
    )

    assert response.status_code == 200, response.get_json()
    about, kept, sale = response.get_json()["buttons"]
    assert (about["id"], about["link_id"], about["label"]) == (
        story["id"], story["link_id"], "About us"
    )
    assert (kept["id"], kept["link_id"]) == (lookbook["id"], lookbook["link_id"])
    assert sale["link_id"] not in {b["link_id"] for b in hub["buttons"]}
    assert [b["position"] for b in (about, kept, sale)] == [0, 1, 2]
    removed = client.get(f"/api/v1/links/{shop['link_id']}", headers=analyst).get_json()
    assert removed["archived"] is True  # kept with its click, no longer followed
    assert Phone(app, "203.0.113.7").open(shop["short_url"]).status_code == 410
    page = Phone(app, "203.0.113.9").open(hub["short_url"]).get_data(as_text=True)
    assert _HREF.findall(page) == [about["short_url"], kept["short_url"], sale["short_url"]]
    assert "About us" in page and "Shop the spring" not in page


def test_a_hub_is_read_listed_changed_and_archived(
    make_hub: HubMaker, client: FlaskClient, marketer: dict[str, str], analyst: dict[str, str],
    app: Flask,
) -> None:
    hub = make_hub(description="Slow fashion, Lyon", buttons=BUTTONS[:2])
    phone = Phone(app, "203.0.113.7")
    assert "Slow fashion, Lyon" in phone.open(hub["short_url"]).get_data(as_text=True)

    listed = client.get("/api/v1/hubs?touchpoint=insta-bio", headers=analyst).get_json()
    changed = client.patch(
        f"/api/v1/hubs/{hub['id']}", json={"title": "Maison Lune Lyon", "description": None},
        headers=marketer,
    )
    shown = phone.open(hub["short_url"]).get_data(as_text=True)
    archived = client.delete(f"/api/v1/hubs/{hub['id']}", headers=marketer)

    assert [item["id"] for item in listed["items"]] == [hub["id"]]
    assert client.get(f"/api/v1/hubs/{hub['id']}", headers=analyst).status_code == 200
    assert changed.status_code == 200
    assert (changed.get_json()["title"], changed.get_json()["description"]) == (
        "Maison Lune Lyon", None
    )
    assert "Maison Lune Lyon" in shown and "Slow fashion" not in shown  # at once, not cached
    assert archived.status_code == 200 and archived.get_json()["archived"] is True
    assert phone.open(hub["short_url"]).status_code == 410
    assert all(phone.open(b["short_url"]).status_code == 410 for b in hub["buttons"])
    assert client.get("/api/v1/hubs", headers=analyst).get_json()["items"] == []
    restored = client.patch(
        f"/api/v1/hubs/{hub['id']}", json={"archived": False}, headers=marketer
    )
    assert restored.get_json()["archived"] is False
    assert phone.open(hub["short_url"]).status_code == 200


def test_an_avatar_is_served_from_its_own_url_cached_for_good_without_its_metadata(
    make_hub: HubMaker, client: FlaskClient, marketer: dict[str, str], app: Flask
) -> None:
    exif = Image.Exif()
    exif[0x010E] = "secret place"  # ImageDescription
    photo = image("JPEG", side=900, exif=exif.tobytes())
    hub = make_hub(avatar=b64(photo))

    url = hub["avatar_url"]
    served = client.get(path_of(url))
    page = Phone(app, "203.0.113.7").open(hub["short_url"]).get_data(as_text=True)

    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert "immutable" in served.headers["Cache-Control"]
    assert b"secret place" not in served.get_data()
    with Image.open(io.BytesIO(served.get_data())) as shown:
        assert max(shown.size) == AVATAR_SIDE
    assert f'src="{path_of(url)}"' in page
    replaced = client.patch(
        f"/api/v1/hubs/{hub['id']}", json={"avatar": f"data:image/webp;base64,"
                                                      f"{b64(image('WEBP'))}"},
        headers=marketer,
    ).get_json()
    assert replaced["avatar_url"] != url and replaced["avatar_url"].endswith(".webp")
    assert client.get(path_of(url)).status_code == 404  # the old one is gone
    assert client.get(path_of(replaced["avatar_url"])).mimetype == "image/webp"


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"touchpoint": "nowhere"}, 422, "unknown_reference", "touchpoint"),
        ({"title": ""}, 422, "invalid_field", "title"),
        ({"stage": "nirvana"}, 422, "unknown_reference", "stage"),
        ({"buttons": [BUTTONS[0], {"label": "x", "url": "javascript:alert(1)"}]}, 422,
         "invalid_url", "buttons.1.url"),
        ({"buttons": [{"label": "Home", "url": "http://go.test/spring"}]}, 422, "invalid_url",
         "buttons.0.url"),
        ({"buttons": [{"label": "", "url": "https://shop.example.com/"}]}, 422,
         "invalid_field", "buttons.0.label"),
        ({"buttons": [{"label": "x", "url": "https://a.example/", "stage": "nope"}]}, 422,
         "unknown_reference", "buttons.0.stage"),
        ({"buttons": [BUTTONS[0]] * 50}, 422, "invalid_field", "buttons"),
        ({"buttons": "many"}, 422, "invalid_field", "buttons"),
        ({"avatar": b64(b"GIF89a not ours")}, 422, "invalid_avatar", "avatar"),
        ({"avatar": b64(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)}, 422, "invalid_avatar", "avatar"),
        ({"avatar": "not base64!"}, 422, "invalid_avatar", "avatar"),
        ({"avatar": b64(image("PNG") + b"\0" * AVATAR_MAX_BYTES)}, 413, "avatar_too_large",
         "avatar"),
        ({"slug": "api"}, 422, "invalid_slug", "slug"),
        ({"colour": "red"}, 422, "invalid_field", "colour"),
    ],
)
def test_bad_input_is_refused_with_a_clear_json_error_and_nothing_is_made(
    client: FlaskClient, marketer: dict[str, str], analyst: dict[str, str], bio: dict[str, Any],
    expect_error: Any, fields: dict[str, Any], status: int, code: str, field: str,
) -> None:
    body = {"touchpoint": bio["key"], "title": "Maison Lune", **fields}

    response = client.post("/api/v1/hubs", json=body, headers=marketer)

    expect_error(response, status, code, field=field)
    assert client.get("/api/v1/hubs", headers=analyst).get_json()["items"] == []


def test_a_hub_for_an_archived_touchpoint_is_refused(
    client: FlaskClient, marketer: dict[str, str], bio: dict[str, Any], expect_error: Any
) -> None:
    assert client.delete("/api/v1/touchpoints/insta-bio", headers=marketer).status_code == 200

    response = client.post(
        "/api/v1/hubs", json={"touchpoint": "insta-bio", "title": "Old bio"}, headers=marketer
    )

    error = expect_error(response, 422, "unknown_reference", field="touchpoint")
    assert "archived" in error["message"]


def test_a_taken_slug_is_a_409_and_buttons_refused_on_a_put_change_nothing(
    make_hub: HubMaker, client: FlaskClient, marketer: dict[str, str], expect_error: Any
) -> None:
    hub = make_hub(slug="lune", buttons=BUTTONS[:1])
    taken = client.post(
        "/api/v1/hubs", json={"touchpoint": "insta-bio", "title": "Again", "slug": "lune"},
        headers=marketer,
    )
    too_many = client.put(
        f"/api/v1/hubs/{hub['id']}/buttons", json=[BUTTONS[0]] * (MAX_BUTTONS + 1),
        headers=marketer,
    )
    foreign = client.put(
        f"/api/v1/hubs/{hub['id']}/buttons", json=[{**BUTTONS[0], "id": 999_999}],
        headers=marketer,
    )
    bad = client.put(
        f"/api/v1/hubs/{hub['id']}/buttons",
        json=[BUTTONS[1], {"label": "x", "url": "ftp://files.example.com/"}], headers=marketer,
    )

    expect_error(taken, 409, "slug_taken", field="slug")
    expect_error(too_many, 422, "invalid_field", field="buttons")
    expect_error(foreign, 422, "invalid_field", field="buttons.0.id")
    expect_error(bad, 422, "invalid_url", field="buttons.1.url")
    after = client.get(f"/api/v1/hubs/{hub['id']}", headers=marketer).get_json()
    assert after["buttons"] == hub["buttons"]


def test_the_answers_are_those_the_document_describes(
    make_hub: HubMaker, client: FlaskClient, marketer: dict[str, str], app: Flask
) -> None:
    spec = document(app)

    def check(path: str, method: str, response: TestResponse, status: int) -> None:
        assert response.status_code == status, response.get_json()
        checked(spec, path, method, response)

    hub = make_hub(description="Slow fashion", avatar=b64(image()), buttons=BUTTONS[:2])
    one = f"/api/v1/hubs/{hub['id']}"
    check("/api/v1/hubs", "get", client.get("/api/v1/hubs", headers=marketer), 200)
    check("/api/v1/hubs/{hub_id}", "get", client.get(one, headers=marketer), 200)
    check("/api/v1/hubs/{hub_id}", "patch", client.patch(
        one, json={"description": None, "avatar": None}, headers=marketer), 200)
    check("/api/v1/hubs/{hub_id}/buttons", "put", client.put(
        f"{one}/buttons", json=BUTTONS[1:], headers=marketer), 200)
    check("/api/v1/hubs/{hub_id}/buttons", "put", client.put(
        f"{one}/buttons", json={"buttons": [{"label": "x"}]}, headers=marketer), 422)
    check("/api/v1/hubs/{hub_id}", "delete", client.delete(one, headers=marketer), 200)


def test_analysts_read_hubs_and_only_marketers_write_them(
    make_hub: HubMaker, client: FlaskClient, analyst: dict[str, str], expect_error: Any
) -> None:
    hub = make_hub()

    assert client.get(f"/api/v1/hubs/{hub['id']}", headers=analyst).status_code == 200
    expect_error(
        client.post("/api/v1/hubs", json={"touchpoint": "insta-bio", "title": "x"},
                    headers=analyst),
        403, "forbidden",
    )
    expect_error(client.delete(f"/api/v1/hubs/{hub['id']}", headers=analyst), 403, "forbidden")
    expect_error(client.get("/api/v1/hubs"), 401, "unauthenticated")
    expect_error(client.get("/api/v1/hubs/999999", headers=analyst), 404, "not_found")
