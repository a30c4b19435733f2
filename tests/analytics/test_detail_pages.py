"""The analytics pages of one touchpoint, one link and one campaign, through the real path:
clicks on short links → ingest → rollups → page, each table also as CSV. The workspace's days
are Paris's."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shortener.models import Link
from tests.user_agents import GOOGLEBOT, IPHONE

PARIS = ZoneInfo("Europe/Paris")
LONG_AGO = "2026-09-01T00:00:00+02:00"
FACEBOOK = "https://m.facebook.com/story.php?id=1"


@pytest.fixture
def app(make_app: Any) -> Flask:
    made: Flask = make_app(timezone="Europe/Paris")
    return made


@pytest.fixture
def journey(shop: Any, link: dict[str, Any]) -> None:
    """store-flyer (500 reached): spring (awareness, spring-launch) 3 people, one by a scan and
    one from Facebook's mobile site, and Googlebot; faq (decision) 1 person. insta-bio: bio
    (awareness, spring-launch) 2 people."""
    shop.touchpoint("insta-bio", "digital", name="Instagram bio")
    shop.link("faq", "store-flyer", "decision")
    shop.link("bio", "insta-bio", "awareness", "spring-launch")
    shop.visit("spring", ("81.130.4.5", IPHONE), qr=True)
    shop.visit("spring", ("81.130.4.6", IPHONE), referrer=FACEBOOK)
    shop.visit("spring", ("81.130.4.7", IPHONE))
    shop.visit("spring", ("66.249.66.1", GOOGLEBOT))
    shop.visit("faq", ("81.130.4.5", IPHONE))
    shop.visit("bio", ("90.12.34.56", IPHONE))
    shop.visit("bio", ("90.12.34.57", IPHONE))


@pytest.fixture
def analyst_client(auth: Any) -> FlaskClient:
    client: FlaskClient = auth.client("analyst")
    return client


@pytest.fixture
def spring_id(session: Session) -> Any:
    """`spring_id(slug="spring")`: the id of a link."""

    def find(slug: str = "spring") -> int:
        session.expire_all()
        found: int = session.scalars(select(Link.id).where(Link.slug == slug)).one()
        return found

    return find


@pytest.fixture
def detail(analyst_client: FlaskClient, pages: Any) -> Any:
    """`detail(path)`: a drill-down page's HTML, asserting it answered 200."""

    def get(path: str) -> str:
        response = analyst_client.get(path)
        assert response.status_code == 200, pages.text(response)[:2000]
        text: str = pages.text(response)
        return text

    return get


def _section(page: str, title: str, level: str = "h2") -> str:
    start = page.index(f">{title}</{level}>")
    return page[start:page.find("</section>", start)]


def _text(fragment: str) -> str:
    fragment = re.sub(r"<svg.*?</svg>", " ", fragment, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _figures(page: str) -> dict[str, tuple[str, str]]:
    """The figures table: per figure, (this window, the window before)."""
    table = _section(page, "Figures")
    rows = re.findall(
        r'<tr data-figure="(\w+)">.*?<td class="num current">(.*?)</td>\s*'
        r'<td class="num previous">(.*?)</td>',
        table,
        re.S,
    )
    return {name: (_text(now), _text(before)) for name, now, before in rows}


def _change(page: str) -> str:
    row = re.search(r'<tr data-figure="human_clicks">.*?<td class="note">(.*?)</td>',
                    _section(page, "Figures"), re.S)
    assert row is not None
    return _text(row.group(1))


def _link_rows(page: str) -> dict[str, dict[str, str]]:
    """The links table: per slug, its figures by `data-figure`."""
    found = {}
    for row in re.findall(r"<tr[^>]*>.*?</tr>", _section(page, "Links"), re.S):
        slug = re.search(r'class="strong mono" href="[^"]*">/([^<]+)</a>', row)
        if slug:
            cells = re.findall(r'data-figure="(\w+)">(.*?)</td>', row, re.S)
            found[slug.group(1)] = {name: _text(value) for name, value in cells}
    return found


def _breakdown(page: str, title: str) -> dict[str, str]:
    card = _section(page, title, "h3")
    rows = re.findall(r'<td class="label" title="[^"]*">([^<]*)</td>.*?'
                      r'<td class="num">([^<]*)</td>', card, re.S)
    return {html.unescape(label): clicks for label, clicks in rows}


def _csv(client: FlaskClient, path: str) -> list[dict[str, str]]:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


# --- a touchpoint ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_a_touchpoints_page_shows_its_figures_links_and_sources(
    detail: Any, spring_id: Any
) -> None:
    page = detail("/dashboard/touchpoints/store-flyer")

    assert re.search(r'<h1 class="break">Store flyer\s*<span class="badge channel-physical">',
                     page)
    figures = _figures(page)
    assert figures["human_clicks"] == ("4", "0")  # bots left out
    assert figures["bot_clicks"] == ("1", "0")
    assert figures["scans"] == ("1", "0")
    assert figures["scan_share"] == ("25.0%", "—")
    assert figures["visitors"] == ("4", "0")
    assert figures["per_1k_reached"][0].startswith("8.0 ")  # 4 visitors of 500 reached
    # The touchpoint, its placement and its links were made today: none in the window before.
    assert figures["reached"] == ("500", "—")
    assert figures["links"] == ("2", "—")
    assert _change(page) == "too few to compare"
    links = _link_rows(page)
    assert links == {
        "spring": {"human_clicks": "3", "scans": "1", "visitors": "3"},
        "faq": {"human_clicks": "1", "scans": "0", "visitors": "1"},
    }
    table = _section(page, "Links")
    assert f'href="/dashboard/links/{spring_id()}?range=30d">/spring</a>' in table
    assert 'href="/dashboard/campaigns/spring-launch?range=30d">spring-launch</a>' in table
    assert _breakdown(page, "Referrer") == {"Facebook": "1", "Direct or unknown": "3"}
    assert _breakdown(page, "Referring host") == {"m.facebook.com": "1", "Direct or unknown": "3"}
    assert _breakdown(page, "Country") == {"United Kingdom": "4"}
    chart = _section(page, "Clicks over time")
    assert "Human clicks per hour, by link" in chart or "Human clicks per day, by link" in chart
    assert f'href="/dashboard/links/{spring_id()}?range=30d">/spring</a>' in chart


@pytest.mark.usefixtures("journey")
def test_without_journeys_a_touchpoints_page_has_no_journey_figures(detail: Any) -> None:
    page = detail("/dashboard/touchpoints/store-flyer")

    assert "journeys" not in _figures(page) and "moved_on" not in _figures(page)
    assert "Where journeys go next" not in page


@pytest.mark.usefixtures("journey")
def test_bots_included_show_apart_and_in_the_clicks(detail: Any) -> None:
    page = detail("/dashboard/touchpoints/store-flyer?bots=include")

    figures = _figures(page)
    assert figures["human_clicks"] == ("4", "0") and figures["bot_clicks"] == ("1", "0")
    assert _link_rows(page)["spring"]["bot_clicks"] == "1"
    assert "bots included" in page and 'name="bots" value="include" checked' in page


@pytest.mark.usefixtures("journey")
def test_the_stage_filter_narrows_the_touchpoints_figures(detail: Any) -> None:
    page = detail("/dashboard/touchpoints/store-flyer?stage=decision")

    assert _figures(page)["human_clicks"] == ("1", "0")
    # The links table too: the link there, and the clicks at that stage.
    assert _link_rows(page) == {"faq": {"human_clicks": "1", "scans": "0", "visitors": "1"}}
    assert "Filtered:" in page and "stage Decision" in page
    assert 'name="stage" value="decision"' in page


def test_the_window_before_is_shown_and_compared_only_with_enough_clicks(
    detail: Any, shop: Any, ingest: Any, spring_id: Any
) -> None:
    shop.touchpoint("poster", "physical", created_at=LONG_AGO)
    shop.touchpoint("radio", "digital", created_at=LONG_AGO)
    shop.link("wall", "poster", "awareness", "autumn", created_at=LONG_AGO)
    shop.link("jingle", "radio", "awareness", created_at=LONG_AGO)
    before = datetime(2026, 11, 4, 12, tzinfo=PARIS)
    during = datetime(2026, 11, 10, 12, tzinfo=PARIS)
    ingest.click("wall", before, ip="81.130.4.5", agent=IPHONE, times=25)
    ingest.click("wall", during, ip="81.130.4.5", agent=IPHONE, times=30, qr=True)
    ingest.click("jingle", before, ip="81.130.4.6", agent=IPHONE)
    window = "range=custom&from=2026-11-08&to=2026-11-14"

    for path in ("/dashboard/touchpoints/poster", f"/dashboard/links/{spring_id('wall')}",
                 "/dashboard/campaigns/autumn"):
        page = detail(f"{path}?{window}")
        assert "Nov 08, 2026 \u2013 Nov 14, 2026" in page, path
        assert "Compared with Nov 01, 2026 \u2013 Nov 07, 2026" in page, path
        figures = _figures(page)
        assert figures["human_clicks"] == ("30", "25"), path
        assert figures["scans"] == ("30", "0"), path
        assert figures["visitors"] == ("1", "1"), path  # one person, one day in each window
        assert _change(page) == "+20.0%", path
    radio = detail(f"/dashboard/touchpoints/radio?{window}")
    assert _figures(radio)["human_clicks"] == ("0", "1")
    assert _change(radio) == "too few to compare"  # not -100 %


# --- a link and a campaign ------------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_a_links_page_shows_its_figures_and_where_it_belongs(
    detail: Any, spring_id: Any
) -> None:
    page = detail(f"/dashboard/links/{spring_id()}?range=7d")

    assert '<h1 class="break">go.test/spring' in page
    figures = _figures(page)
    assert (figures["human_clicks"], figures["bot_clicks"], figures["scans"]) == (
        ("3", "0"), ("1", "0"), ("1", "0")
    )
    assert figures["visitors"] == ("3", "0")
    assert figures["first_click_at"][0] != "—" and figures["last_click_at"][0] != "—"
    assert 'href="/dashboard/touchpoints/store-flyer?range=7d">Store flyer</a>' in page
    assert 'href="/dashboard/campaigns/spring-launch?range=7d">spring-launch</a>' in page
    assert "https://shop.example.com/spring?ref=flyer" in page
    assert "Human clicks per" in _section(page, "Clicks over time")
    assert "by stage" in _section(page, "Clicks over time")


@pytest.mark.usefixtures("journey")
def test_a_campaigns_page_shows_its_links_across_touchpoints(
    detail: Any, spring_id: Any
) -> None:
    page = detail("/dashboard/campaigns/spring-launch")

    assert '<h1 class="break">spring-launch' in page
    figures = _figures(page)
    assert figures["human_clicks"] == ("5", "0")  # 3 on spring, 2 on bio
    assert figures["links"] == ("2", "—") and figures["touchpoints"] == ("2", "—")
    assert _change(page) == "too few to compare"
    assert _link_rows(page) == {
        "spring": {"human_clicks": "3", "scans": "1", "visitors": "3"},
        "bio": {"human_clicks": "2", "scans": "0", "visitors": "2"},
    }
    table = _section(page, "Links")
    assert 'href="/dashboard/touchpoints/insta-bio?range=30d">Instagram bio</a>' in table
    assert f'href="/dashboard/links/{spring_id("bio")}?range=30d">/bio</a>' in table


@pytest.mark.usefixtures("journey")
def test_an_archived_touchpoint_and_link_keep_their_figures_and_say_so(
    detail: Any, shop: Any, spring_id: Any
) -> None:
    shop.archive_link(spring_id())
    shop.archive("store-flyer")

    touchpoint = detail("/dashboard/touchpoints/store-flyer")
    link = detail(f"/dashboard/links/{spring_id()}")

    assert _figures(touchpoint)["human_clicks"] == ("4", "0")
    assert re.search(r'<h1 class="break">Store flyer.*?>archived</span>', touchpoint, re.S)
    assert re.search(r'<tr class="archived">\s*<td class="nowrap"><a [^>]*>/spring</a>',
                     touchpoint)
    assert _figures(link)["human_clicks"] == ("3", "0")
    assert re.search(r'<h1 class="break">go.test/spring.*?>archived</span>', link, re.S)


# --- CSV ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_every_table_of_a_touchpoints_page_downloads_as_csv_with_its_figures(
    detail: Any, analyst_client: FlaskClient
) -> None:
    page = detail("/dashboard/touchpoints/store-flyer?range=7d")
    hrefs = dict(re.findall(r'href="(/dashboard/touchpoints/store-flyer\?[^"]*table=(\w+)[^"]*)"',
                            page))
    tables = {table: html.unescape(href) for href, table in hrefs.items()}
    assert set(tables) == {
        "links", "timeseries", "device", "os", "browser", "country", "referrer",
        "referrer_host", "source",
    }
    assert all("range=7d" in url and "format=csv" in url for url in tables.values())

    links = {row["slug"]: row for row in _csv(analyst_client, tables["links"])}
    assert (links["spring"]["human_clicks"], links["spring"]["bot_clicks"]) == ("3", "1")
    assert links["faq"]["human_clicks"] == "1"
    series = _csv(analyst_client, tables["timeseries"])
    assert sum(int(row["human_clicks"]) for row in series) == 4
    hosts = {row["value"]: row["clicks"] for row in _csv(analyst_client, tables["referrer_host"])}
    assert hosts["m.facebook.com"] == "1"
    countries = {(row["value"], row["label"]) for row in _csv(analyst_client, tables["country"])}
    assert countries == {("GB", "United Kingdom")}


@pytest.mark.usefixtures("journey")
def test_a_links_and_a_campaigns_tables_download_as_csv(
    analyst_client: FlaskClient, spring_id: Any
) -> None:
    series = _csv(analyst_client, f"/dashboard/links/{spring_id()}?format=csv&table=timeseries")
    assert sum(int(row["human_clicks"]) for row in series) == 3
    assert {row["group_key"] for row in series} == {"awareness"}
    default = _csv(analyst_client, f"/dashboard/links/{spring_id()}?format=csv")
    assert default == series
    links = _csv(analyst_client, "/dashboard/campaigns/spring-launch?format=csv&table=links")
    assert sorted((row["slug"], row["human_clicks"]) for row in links) == [
        ("bio", "2"), ("spring", "3")
    ]


# --- windows and parameters -----------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_a_preset_is_the_same_window_as_its_dates_typed_in(
    detail: Any, analyst_client: FlaskClient
) -> None:
    today = datetime.now(PARIS).date()
    typed = f"range=custom&from={today - timedelta(days=6)}&to={today}"
    path = "/dashboard/touchpoints/store-flyer"

    by_preset, by_dates = detail(f"{path}?range=7d"), detail(f"{path}?{typed}")

    assert _figures(by_preset) == _figures(by_dates)
    assert 'aria-current="true">7 days</a>' in by_preset
    assert f"{today - timedelta(days=6):%b %d, %Y} \u2013 {today:%b %d, %Y}" in by_preset
    assert '<span class="zone">Europe/Paris</span>' in by_preset
    for table in ("links", "timeseries", "country"):
        preset_csv = analyst_client.get(f"{path}?range=7d&format=csv&table={table}")
        typed_csv = analyst_client.get(f"{path}?{typed}&format=csv&table={table}")
        assert preset_csv.get_data() == typed_csv.get_data(), table


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("/dashboard/touchpoints/store-flyer", "group_by=link", "group_by"),
        ("/dashboard/touchpoints/store-flyer", "touchpoint=insta-bio", "touchpoint"),
        ("/dashboard/touchpoints/store-flyer", "table=links", "table"),
        ("/dashboard/touchpoints/store-flyer", "funnel=open", "funnel"),  # the dashboard's own
        ("/dashboard/touchpoints/store-flyer", "range=custom&from=2026-11-02T10:30", "from"),
        ("/dashboard/links/{spring}", "link=3", "link"),
        ("/dashboard/links/{spring}", "stage=nowhere", "stage"),
        ("/dashboard/campaigns/spring-launch", "campaign=other", "campaign"),
        ("/dashboard/campaigns/spring-launch", "range=forever", "range"),
    ],
)
def test_a_bad_or_unknown_parameter_is_a_400_naming_it(
    analyst_client: FlaskClient, pages: Any, spring_id: Any, path: str, query: str,
    parameter: str,
) -> None:
    response = analyst_client.get(f"{path.format(spring=spring_id())}?{query}")

    assert response.status_code == 400
    flash = re.search(r'<div class="flash flash-error" role="alert">([^<]*)</div>',
                      pages.text(response))
    assert flash is not None
    assert html.unescape(flash.group(1)).startswith(f"{parameter}: ")
    assert "aria-current=\"true\">30 days</a>" in pages.text(response)  # the default window


@pytest.mark.usefixtures("journey")
def test_a_csv_of_no_such_table_is_a_400(analyst_client: FlaskClient) -> None:
    response = analyst_client.get("/dashboard/touchpoints/store-flyer?format=csv&table=nope")

    assert response.status_code == 400
    assert "table: must be one of links, timeseries" in html.unescape(
        response.get_data(as_text=True)
    )


@pytest.mark.usefixtures("journey")
def test_a_touchpoint_outside_the_window_says_it_is_not_in_its_reports(detail: Any) -> None:
    page = detail("/dashboard/touchpoints/store-flyer?range=custom&from=2026-01-01&to=2026-01-31")

    assert "Not in this window's reports" in page
    assert _figures(page)["human_clicks"] == ("0", "0")


def test_what_does_not_exist_is_a_404(
    analyst_client: FlaskClient, link: dict[str, Any], session: Session, pages: Any
) -> None:
    unknown_id = (session.scalar(select(func.max(Link.id))) or 0) + 1
    for path in ("/dashboard/touchpoints/nope", f"/dashboard/links/{unknown_id}",
                 "/dashboard/links/99999999999", "/dashboard/campaigns/never-run"):
        response = analyst_client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/html"

    quiet = analyst_client.get(
        "/dashboard/campaigns/spring-launch?range=custom&from=2020-01-01&to=2020-01-31"
    )
    assert quiet.status_code == 404
    text = pages.text(quiet)
    assert "Nothing in this window" in text
    assert 'aria-label="Window"' in text  # the window controls, to choose another


# --- access and the pages' rules ------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_the_pages_are_for_analysts_and_above_and_carry_no_inline_code(
    client: FlaskClient, auth: Any, spring_id: Any, pages: Any
) -> None:
    paths = ("/dashboard/touchpoints/store-flyer", f"/dashboard/links/{spring_id()}",
             "/dashboard/campaigns/spring-launch")
    for path in paths:
        signed_out = client.get(path)
        assert signed_out.status_code == 302
        assert signed_out.headers["Location"].startswith("/signin?next=")
    for role in ("analyst", "marketer", "admin"):
        signed_in = auth.client(role)
        for path in paths:
            response = signed_in.get(path)
            assert response.status_code == 200, (role, path)
            assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
            page = pages.text(response)
            assert "<style" not in page and " style=" not in page, path
            assert "<script>" not in page and " onclick=" not in page, path
            assert 'aria-current="page">Dashboard</a>' in page  # the navigation says where
