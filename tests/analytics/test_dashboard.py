"""The analyst dashboard through the real path: clicks on short links → ingest → rollups → page,
and each of its tables as CSV. The workspace here is in Pacific/Auckland, far from UTC, so that a
day cut in UTC would show."""

from __future__ import annotations

import csv
import html
import io
import math
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import list_pages
from analytics.models import Click
from shortener.demo import DEMO_EMAIL, DEMO_PASSWORD
from shortener.models import Link
from tests.user_agents import GOOGLEBOT, IPHONE

ZONE = "Pacific/Auckland"
AUCKLAND = ZoneInfo(ZONE)
# Before any past window the tests ask for: touchpoints are listed only where they existed.
LONG_AGO = "2026-09-01T00:00:00+12:00"


@pytest.fixture
def app(make_app: Any) -> Flask:
    """The embedded default, in a workspace whose days are Auckland's."""
    made: Flask = make_app(timezone=ZONE)
    return made


@pytest.fixture
def journey(shop: Any, link: dict[str, Any]) -> None:
    """store-flyer (500 reached): spring (awareness, spring-launch) 3 people, one by a scan, and
    Googlebot; faq (decision) 1 person. A silent poster with a post-purchase link; a touchpoint
    whose name is HTML, with one click; nobody serves consideration or support."""
    shop.touchpoint("silent-poster", "physical", name="Silent poster")
    shop.touchpoint("evil", "digital", name="<b>Bold</b> & <script>x</script>")
    shop.link("faq", "store-flyer", "decision")
    shop.link("quiet", "silent-poster", "post-purchase")
    shop.link("evil", "evil", "post-purchase")
    shop.visit("spring", ("81.130.4.5", IPHONE), qr=True)
    shop.visit("spring", ("81.130.4.6", IPHONE))
    shop.visit("spring", ("81.130.4.7", IPHONE))
    shop.visit("spring", ("66.249.66.1", GOOGLEBOT))
    shop.visit("faq", ("81.130.4.5", IPHONE))
    shop.visit("evil", ("90.12.34.56", IPHONE))


@pytest.fixture
def analyst_client(auth: Any) -> FlaskClient:
    client: FlaskClient = auth.client("analyst")
    return client


@pytest.fixture
def dashboard(analyst_client: FlaskClient, pages: Any) -> Any:
    """`dashboard(query)`: the page's HTML, asserting it answered 200."""

    def get(query: str = "") -> str:
        response = analyst_client.get(f"/dashboard?{query}")
        assert response.status_code == 200, pages.text(response)[:2000]
        text: str = pages.text(response)
        return text

    return get


def _table(page: str, title: str) -> str:
    """The HTML of the section with this heading."""
    start = page.index(f">{title}</h2>")
    end = page.find("</section>", start)
    return page[start:end]


def _text(fragment: str) -> str:
    """What a person reads in an HTML fragment (SVG tooltips left out)."""
    fragment = re.sub(r"<svg.*?</svg>", " ", fragment, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _figures(section: str, name: str) -> dict[str, str]:
    """The figures of the row whose link reads `name`, by their `data-figure`."""
    for row in re.findall(r"<tr[^>]*>.*?</tr>", section, re.S):
        if f">{html.escape(name, quote=False)}</a>" in row:
            cells = re.findall(r'data-figure="(\w+)">(.*?)</td>', row, re.S)
            return {figure: _text(value) for figure, value in cells}
    raise AssertionError(f"no row for {name!r} in {section[:1500]}")


def _tile(page: str, name: str) -> tuple[str, str]:
    """A KPI tile's value and note."""
    found = re.search(
        rf'id="kpi-{name}">.*?<div class="value[^"]*">([^<]*)</div>\s*'
        r'<div class="note">(.*?)</div>',
        page,
        re.S,
    )
    assert found is not None, name
    return found.group(1), _text(found.group(2))


def _per_1k(visitors: int, reached: int) -> str:
    """`8.0 3.1\u201320.5`: the rate per 1,000 reached and its 95 % Wilson interval, as shown."""
    z = 1.959964
    p = visitors / reached
    centre = (p + z * z / (2 * reached)) / (1 + z * z / reached)
    spread = z / (1 + z * z / reached) * math.sqrt(
        p * (1 - p) / reached + z * z / (4 * reached * reached)
    )
    low, high = max(0.0, centre - spread), min(1.0, centre + spread)
    return (
        f"{round(p * 1000, 2):.1f} {round(low * 1000, 2):.1f}\u2013{round(high * 1000, 2):.1f}"
    )


def _csv(client: FlaskClient, query: str) -> list[dict[str, str]]:
    response = client.get(f"/dashboard?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


# --- engagement -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_most_and_least_engaged_show_human_figures_and_the_silent_touchpoints(
    dashboard: Any,
) -> None:
    page = dashboard()

    most = _table(page, "Most engaged touchpoints")
    least = _table(page, "Least engaged touchpoints")
    assert "Store flyer" in most and "Silent poster" not in most
    # Bots are left out: 4 human clicks (1 scan) by 4 visitors (one of them on both links).
    assert _figures(most, "Store flyer") == {
        "human_clicks": "4", "scans": "1", "visitors": "4", "change": "too few to compare",
        "per_1k_reached": _per_1k(4, 500),
    }
    assert _figures(least, "Silent poster")["human_clicks"] == "0"
    assert 'class="num zero" data-figure="human_clicks">0<' in least
    assert "Bot clicks" not in most  # no column of bots unless they are included
    assert _tile(page, "silent") == ("1", "of 3 touchpoints")


@pytest.mark.usefixtures("journey")
def test_show_all_lists_every_touchpoint_a_page_at_a_time_in_the_tables_order(
    dashboard: Any, analyst_client: FlaskClient, pages: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(list_pages, "PAGE_ROWS", 2)  # three touchpoints: two pages
    assert 'href="/dashboard/all/most?range=30d"' in _table(dashboard(), "Most engaged touchpoints")

    def page(table: str, query: str = "") -> tuple[int, str]:
        response = analyst_client.get(f"/dashboard/all/{table}?range=30d{query}")
        return response.status_code, pages.text(response)

    status, first = page("most")
    assert status == 200
    assert ">3 touchpoints, 1\u20132</h2>" in first
    assert _figures(first, "Store flyer")["human_clicks"] == "4"  # 3 people on spring, 1 on faq
    assert _figures(first, "<b>Bold</b> & <script>x</script>")["human_clicks"] == "1"
    assert "Silent poster" not in first and 'rel="next"' in first
    status, second = page("most", "&page=2")
    assert (status, _figures(second, "Silent poster")["human_clicks"]) == (200, "0")
    assert "Store flyer" not in second and 'rel="prev"' in second
    _, least = page("least")
    evil = html.escape("<b>Bold</b> & <script>x</script>", quote=False)
    assert least.index(">Silent poster</a>") < least.index(f">{evil}</a>")  # 0 clicks, then 1
    assert "Store flyer" not in least  # the most engaged is last, on page 2

    for bad in ("&page=3", "&page=0", "&page=two"):
        status, text = page("most", bad)
        assert status == 400 and "page" in text, bad
    assert page("nothing")[0] == 404


@pytest.mark.usefixtures("journey")
def test_show_all_of_a_breakdown_lists_its_values_with_the_windows_clicks(
    analyst_client: FlaskClient, pages: Any
) -> None:
    response = analyst_client.get("/dashboard/all/device?range=30d")
    assert response.status_code == 200
    card = _text(pages.text(response))
    # Five people's clicks, all on iPhones; Googlebot's is no device of a person.
    assert "Device CSV Mobile 5 100%" in card, card[:1500]


@pytest.mark.usefixtures("journey")
def test_the_tiles_count_human_and_bot_clicks_apart_whatever_bots_says(dashboard: Any) -> None:
    without = dashboard()
    with_bots = dashboard("bots=include")

    for page in (without, with_bots):
        assert _tile(page, "human")[0] == "5"
        assert _tile(page, "bots")[0] == "1"
        assert _tile(page, "visitors")[0] == "5"
        scans, share = _tile(page, "scans")
        assert scans == "1" and share.startswith("20.0% of human clicks (95 %: ")
    assert _tile(without, "bots")[1] == "left out of every other figure"
    assert "bots excluded" in without and "bots included" in with_bots
    flyer = _figures(_table(with_bots, "Most engaged touchpoints"), "Store flyer")
    assert (flyer["human_clicks"], flyer["bot_clicks"]) == ("4", "1")


@pytest.mark.usefixtures("journey")
def test_the_bot_tile_says_how_many_were_mail_scanners(dashboard: Any, shop: Any) -> None:
    chrome = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36"
    )
    shop.visit("faq", ("148.163.150.29", chrome))  # Proofpoint's URL Defense opening the link

    bots, note = _tile(dashboard(), "bots")

    assert bots == "2"  # Googlebot and the scanner
    assert note == "1 of them mail scanners; left out of every other figure"


def test_a_change_needs_twenty_human_clicks_in_both_windows(
    dashboard: Any, shop: Any, ingest: Any
) -> None:
    shop.touchpoint("poster", "physical", created_at=LONG_AGO)
    shop.touchpoint("radio", "digital", created_at=LONG_AGO)
    shop.link("wall", "poster", "awareness", created_at=LONG_AGO)
    shop.link("jingle", "radio", "awareness", created_at=LONG_AGO)
    before = datetime(2026, 11, 4, 12, tzinfo=AUCKLAND)  # in 1-7 November, local days
    during = datetime(2026, 11, 10, 12, tzinfo=AUCKLAND)  # in 8-14 November
    ingest.click("wall", before, ip="81.130.4.5", agent=IPHONE, times=25)
    ingest.click("wall", during, ip="81.130.4.5", agent=IPHONE, times=30)
    ingest.click("jingle", before, ip="81.130.4.6", agent=IPHONE)  # 1 click, then none

    page = dashboard("range=custom&from=2026-11-08&to=2026-11-14")

    assert "Nov 08, 2026 \u2013 Nov 14, 2026" in page
    assert "Compared with Nov 01, 2026 \u2013 Nov 07, 2026" in page
    assert _figures(_table(page, "Most engaged touchpoints"), "Poster")["change"] == "+20.0%"
    radio = _figures(_table(page, "Least engaged touchpoints"), "Radio")
    assert radio["change"] == "too few to compare"  # not -100 %
    assert _tile(page, "human") == ("30", "+15.4% vs the window before")  # 30 against 26


def test_per_1k_reached_counts_the_placements_begun_before_the_window_ended(
    dashboard: Any, shop: Any, ingest: Any
) -> None:
    shop.touchpoint("poster", "physical", created_at=LONG_AGO)
    shop.link("wall", "poster", "awareness", created_at=LONG_AGO)
    shop.place("poster", 2000, "2026-11-01")
    shop.place("poster", 5000, "2026-11-20")  # after the window
    for i in range(30):
        ingest.click("wall", datetime(2026, 11, 10, 12, tzinfo=AUCKLAND), ip=f"81.130.5.{i}",
                     agent=IPHONE)

    page = dashboard("range=custom&from=2026-11-08&to=2026-11-14")

    most = _table(page, "Most engaged touchpoints")
    assert ">per 1k reached</th>" in most
    assert _figures(most, "Poster")["per_1k_reached"] == _per_1k(30, 2000)
    assert '<svg class="range-bar"' in most
    low_high = _per_1k(30, 2000).split()[1]
    assert f"<title>95 % interval {low_high} per 1k reached</title>" in most


@pytest.mark.usefixtures("journey")
def test_a_touchpoint_without_exposure_has_no_rate_and_says_why(dashboard: Any) -> None:
    page = dashboard()

    row = re.search(r"&lt;b&gt;Bold.*?</tr>", page, re.S)
    assert row is not None
    assert 'title="No exposure recorded: add a placement to the touchpoint to rate it">—<' in (
        row.group(0)
    )


def test_a_window_without_clicks_says_so_instead_of_ranking_anyone(
    dashboard: Any, shop: Any
) -> None:
    shop.touchpoint("poster", "physical", created_at=LONG_AGO)

    page = dashboard("range=custom&from=2026-10-01&to=2026-10-07")

    assert "No clicks in this window." in page
    most = _table(page, "Most engaged touchpoints")
    assert "No clicks in this window: nothing to rank as most engaged." in most
    assert "Poster" not in most
    assert "Poster" in _table(page, "Least engaged touchpoints")  # it existed, silent
    assert _tile(page, "human")[0] == "0"
    assert "No clicks in this window</text>" in _table(page, "Clicks over time")


@pytest.mark.usefixtures("journey")
def test_a_window_that_has_not_begun_says_so(dashboard: Any) -> None:
    page = dashboard("range=custom&from=2030-01-01&to=2030-01-07")

    assert "This window has not begun" in page
    assert 'id="from" name="from" type="date" value="2030-01-01"' in page  # as asked for
    assert 'id="to" name="to" type="date" value="2030-01-07"' in page
    assert "Nothing to compare with yet" in page
    for title in ("Most engaged touchpoints", "Least engaged touchpoints", "Campaigns",
                  "Journey map"):
        section = _table(page, title)
        assert "This window has not begun." in section, title
        assert "Store flyer" not in section
    assert _tile(page, "human")[0] == "0"
    assert "This window has not begun</text>" in _table(page, "Clicks over time")


# --- visitors by stage and the journey map --------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_visitors_by_stage_are_totals_of_different_people_without_drop_wording(
    dashboard: Any,
) -> None:
    page = dashboard()
    stages = _table(page, "Visitors by stage")

    names = re.findall(r'<li class="stage-step[^"]*">\s*<div class="stage-label">\s*'
                       r'<span class="strong">([^<]+)</span>', stages)
    assert names == ["Awareness", "Consideration", "Decision", "Post purchase", "Support"]
    visitors = re.findall(r'<div class="stage-figures">\s*<div><span class="strong">(\d+)<',
                          stages)
    assert visitors == ["3", "0", "1", "1", "0"]
    assert "totals of different people" in stages
    assert "drop" not in stages.lower() and "funnel" not in stages.lower()
    ratios = re.findall(r"next stage \(([^)]+)\):</span> <span class=\"ratio\">([^<]+)<", stages)
    assert ratios == [
        ("Consideration", "0.00\u00d7 as many visitors"),  # 0 of 3
        ("Post purchase", "1.00\u00d7 as many visitors"),  # 1 of 1
        ("Support", "0.00\u00d7 as many visitors"),
    ]
    assert "no visitors here to set Decision's against" in stages
    gaps = re.findall(r'<span class="strong">([^<]+)</span>\s*<span class="gap-note">', stages)
    assert gaps == ["Consideration", "Support"]


@pytest.mark.usefixtures("journey")
def test_the_journey_map_shows_each_touchpoint_at_each_stage_with_empty_cells(
    dashboard: Any,
) -> None:
    jmap = _table(dashboard(), "Journey map")

    assert 'class="gap-col" title="No touchpoint serves this stage">Support · gap</th>' in jmap
    assert 'title="Store flyer at Awareness: 3 clicks, 3 visitors, 1 live link">3<' in jmap
    assert re.search(r'class="cell heat-5" title="Store flyer at Awareness', jmap)
    assert 'class="cell heat-0" title="Silent poster at Post purchase: 0 clicks' in jmap
    assert 'title="Silent poster has no link at Awareness">·<' in jmap


@pytest.mark.usefixtures("journey")
def test_the_journey_map_honours_the_stage_filter_on_the_page_and_in_csv(
    dashboard: Any, analyst_client: FlaskClient
) -> None:
    jmap = _table(dashboard("stage=decision"), "Journey map")

    columns = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', jmap)
    assert columns == ["Touchpoint", "Decision", "Total"]
    assert 'title="Store flyer at Decision: 1 click, 1 visitor, 1 live link">1<' in jmap
    assert "Awareness" not in jmap
    rows = _csv(analyst_client, "stage=decision&format=csv&table=map")
    assert {row["stage_key"] for row in rows} == {"decision"}
    assert {row["touchpoint_key"]: row["clicks"] for row in rows}["store-flyer"] == "1"


@pytest.mark.usefixtures("journey")
def test_an_archived_touchpoint_keeps_its_figures_and_is_marked(
    dashboard: Any, shop: Any
) -> None:
    shop.archive("store-flyer")

    page = dashboard()

    most = _table(page, "Most engaged touchpoints")
    assert _figures(most, "Store flyer")["human_clicks"] == "4"
    assert re.search(r'<tr class="archived">\s*<td>\s*<div><a [^>]*>Store flyer</a>', most)
    assert ">archived</span>" in _table(page, "Journey map")
    assert _tile(page, "human")[0] == "5"


# --- links to the drill-down pages ----------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_every_name_opens_its_own_page_with_the_same_window_and_filters(
    dashboard: Any, analyst_client: FlaskClient, session: Session
) -> None:
    spring = session.scalars(select(Link).where(Link.slug == "spring")).one()
    page = dashboard("range=7d&channel=physical&bots=include&group_by=link")

    touchpoint = "/dashboard/touchpoints/store-flyer?range=7d&amp;channel=physical&amp;bots=include"
    for title in ("Most engaged touchpoints", "Journey map"):
        assert f'href="{touchpoint}">Store flyer</a>' in _table(page, title)
    campaign = "/dashboard/campaigns/spring-launch?range=7d&amp;channel=physical&amp;bots=include"
    assert f'href="{campaign}">spring-launch</a>' in _table(page, "Campaigns")
    link = f"/dashboard/links/{spring.id}?range=7d&amp;channel=physical&amp;bots=include"
    assert f'href="{link}">/spring</a>' in _table(page, "Clicks over time")

    for href, heading in ((touchpoint, "Store flyer"), (campaign, "spring-launch"),
                          (link, "go.test/spring")):
        opened = analyst_client.get(html.unescape(href))
        assert opened.status_code == 200, href
        text = opened.get_data(as_text=True)
        assert re.search(rf'<h1 class="break">{re.escape(heading)}', text), href
        assert 'aria-current="true">7 days</a>' in text  # the same window
        assert 'name="channel" value="physical"' in text  # the same filter


@pytest.mark.usefixtures("journey")
def test_a_campaign_filter_is_not_carried_to_the_campaigns_own_page(dashboard: Any) -> None:
    page = dashboard("campaign=spring-launch")

    assert 'href="/dashboard/campaigns/spring-launch?range=30d">spring-launch</a>' in page
    assert 'href="/dashboard/touchpoints/store-flyer?range=30d&amp;campaign=spring-launch"' in page


# --- CSV ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize(
    ("table", "header"),
    [
        ("most", "touchpoint_key,touchpoint_name,channel,archived,clicks,human_clicks,bot_clicks"),
        ("least", "touchpoint_key,touchpoint_name,channel,archived,clicks,human_clicks"),
        ("campaigns", "campaign,links,touchpoints,clicks,human_clicks,bot_clicks,scanner_clicks"),
        ("stages", "stage_key,stage_name,position,clicks,human_clicks,bot_clicks"),
        ("map", "touchpoint_key,touchpoint_name,channel,stage_key,stage_name,clicks,visitors"),
        ("timeseries", "bucket,group_key,group_name,clicks,human_clicks,bot_clicks,scans"),
        ("device", "dimension,value,label,clicks,visitors,share"),
        ("referrer", "dimension,value,label,clicks,visitors,share"),
        ("source", "dimension,value,label,clicks,visitors,share"),
    ],
)
def test_every_table_downloads_as_csv_with_the_same_filters(
    dashboard: Any, analyst_client: FlaskClient, table: str, header: str
) -> None:
    page = dashboard("range=7d&channel=physical")
    link = re.search(rf'href="(/dashboard\?[^"]*format=csv&amp;table={table}[^"]*)"', page)
    assert link is not None, table
    url = html.unescape(link.group(1))
    assert "range=7d" in url and "channel=physical" in url

    response = analyst_client.get(url)

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert ",".join(rows[0]).startswith(header)
    assert not any("evil" in ",".join(row) for row in rows[1:])  # the channel filter holds


@pytest.mark.usefixtures("journey")
def test_the_csv_has_the_figures_the_page_shows(analyst_client: FlaskClient) -> None:
    most = {r["touchpoint_key"]: r for r in _csv(analyst_client, "format=csv&table=most")}

    flyer = most["store-flyer"]
    assert (flyer["human_clicks"], flyer["bot_clicks"], flyer["scans"], flyer["visitors"]) == (
        "4", "1", "1", "4"
    )
    assert (flyer["reached"], flyer["per_1k_reached"], flyer["comparable"]) == (
        "500", "8.0", "False"
    )
    assert flyer["change"] == ""
    (spring,) = _csv(analyst_client, "format=csv&table=campaigns")
    assert (spring["campaign"], spring["human_clicks"], spring["scans"]) == (
        "spring-launch", "3", "1"
    )


@pytest.mark.usefixtures("journey")
def test_a_spreadsheet_formula_in_a_name_is_defused_in_csv(
    analyst_client: FlaskClient, client: FlaskClient, marketer: dict[str, str]
) -> None:
    renamed = client.patch(
        "/api/v1/touchpoints/store-flyer", json={"name": "=HYPERLINK(1)"}, headers=marketer
    )
    assert renamed.status_code == 200

    body = analyst_client.get("/dashboard?format=csv&table=map").get_data(as_text=True)

    assert "'=HYPERLINK(1)" in body


# --- windows --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize("preset", [7, 30, 90])
def test_a_preset_is_the_same_window_as_its_dates_typed_in(
    analyst_client: FlaskClient, dashboard: Any, preset: int
) -> None:
    today = datetime.now(AUCKLAND).date()
    typed = f"range=custom&from={today - timedelta(days=preset - 1)}&to={today}"

    by_preset, by_dates = dashboard(f"range={preset}d"), dashboard(typed)

    window = re.search(r'<p class="period">.*?</p>\s*<p class="period[^"]*">.*?</p>', by_preset,
                       re.S)
    assert window is not None and window.group(0) in by_dates
    assert f"{today - timedelta(days=preset - 1):%b %d, %Y} \u2013 {today:%b %d, %Y}" in (
        window.group(0)
    )
    assert ZONE in window.group(0)
    kpis = by_preset[by_preset.index('class="kpis"'):by_preset.index("Most engaged")]
    assert kpis in by_dates
    for table in ("most", "least", "stages", "timeseries", "campaigns"):
        preset_csv = analyst_client.get(f"/dashboard?range={preset}d&format=csv&table={table}")
        typed_csv = analyst_client.get(f"/dashboard?{typed}&format=csv&table={table}")
        assert preset_csv.get_data() == typed_csv.get_data(), table
        assert preset_csv.headers["Content-Disposition"] == typed_csv.headers[
            "Content-Disposition"
        ]


@pytest.mark.usefixtures("journey")
def test_the_window_is_shown_in_local_days_with_its_zone(dashboard: Any) -> None:
    week = dashboard("range=7d")
    custom = dashboard("range=custom&from=2020-01-01&to=2020-01-31")

    assert '<a href="/dashboard?range=7d' in week and 'aria-current="true">7 days</a>' in week
    assert '<span class="zone">Pacific/Auckland</span>' in week
    # The present cuts the week, unless this is the last hour of its last day.
    assert ("so far: up to" in week) == (datetime.now(AUCKLAND).hour != 23)
    assert "Jan 01, 2020 \u2013 Jan 31, 2020" in custom
    assert "Compared with Dec 01, 2019 \u2013 Dec 31, 2019" in custom
    assert "so far" not in custom
    assert _tile(custom, "human")[0] == "0"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("range=forever", "range"),
        ("range=custom&from=2026-02-30", "from"),
        ("range=custom&from=2026-03-02&to=2026-03-01", "from"),
        ("range=custom&from=2026-03-02T05:30", "from"),
        ("channel=radio", "channel"),
        ("stage=nowhere", "stage"),
        ("interval=minute", "interval"),
        ("touchpoint=store-flyer", "touchpoint"),
        ("link=17", "link"),
        ("grup_by=stage", "grup_by"),
        ("table=most", "table"),
        ("format=xml", "format"),
        ("funnel=sideways", "funnel"),
    ],
)
def test_a_bad_or_unknown_parameter_is_a_400_naming_it_on_the_default_window(
    analyst_client: FlaskClient, query: str, parameter: str, pages: Any
) -> None:
    response = analyst_client.get(f"/dashboard?{query}")

    assert response.status_code == 400
    flash = re.search(r'<div class="flash flash-error" role="alert">([^<]*)</div>',
                      pages.text(response))
    assert flash is not None
    assert html.unescape(flash.group(1)).startswith(f"{parameter}: ")
    assert flash.group(1).endswith("The last 30 days are shown instead.")


def test_an_unknown_parameter_of_a_csv_download_is_a_400_too(
    analyst_client: FlaskClient,
) -> None:
    response = analyst_client.get("/dashboard?format=csv&table=most&touchpont=x")

    assert response.status_code == 400
    assert response.mimetype == "text/html"


# --- the chart, escaping, access ------------------------------------------------------------------


@pytest.mark.usefixtures("journey")
def test_clicks_over_time_and_where_they_come_from(dashboard: Any) -> None:
    page = dashboard("range=7d&interval=hour&group_by=channel")

    chart = _table(page, "Clicks over time")
    assert '<svg class="chart"' in chart
    assert "Human clicks per hour, by channel" in chart
    assert re.search(r"</svg> physical <span class=\"muted\">4</span>", chart)
    assert "Clicks, bots included, per day" in dashboard("range=7d&bots=include")
    sources = page[page.index(">Scan or click</h3>"):]
    assert "QR code scan" in sources and "Click" in sources
    devices = page[page.index(">Device</h3>"):page.index(">Operating system</h3>")]
    assert "Mobile" in devices and "Bot" not in devices
    countries = page[page.index(">Country</h3>"):page.index(">Referrer</h3>")]
    assert 'title="United Kingdom">United Kingdom<' in countries  # by name, not GB
    assert 'title="France">France<' in countries


@pytest.mark.usefixtures("journey")
def test_text_from_users_is_escaped_in_tables_and_charts(dashboard: Any) -> None:
    page = dashboard()

    assert "<b>Bold</b>" not in page and "<script>x" not in page
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;" in page
    chart = _table(page, "Clicks over time")
    assert "<title>&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;: 1 click" in chart


def test_hourly_points_beyond_a_month_are_shown_by_day(dashboard: Any) -> None:
    page = dashboard("range=90d&interval=hour")

    assert "shown by day" in page
    assert "Human clicks per day" in page


def test_the_dashboard_needs_signing_in(client: FlaskClient) -> None:
    response = client.get("/dashboard")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/signin")


# --- the demo -------------------------------------------------------------------------------------


def test_the_demo_has_an_account_and_a_month_of_clicks_that_tell_a_story(
    app: Flask, cli: FlaskCliRunner, client: FlaskClient, session: Session, auth: Any, pages: Any
) -> None:
    with app.app_context():
        first = cli.invoke(args=["init", "--demo"])
        second = cli.invoke(args=["init", "--demo"])
    assert first.exit_code == 0, first.output
    assert "clicks over the last 30 days" in first.output
    assert f"Created the demo account {DEMO_EMAIL}" in first.output
    assert "Created the demo account" not in second.output
    humans, bots, scans = session.execute(
        select(
            func.count().filter(Click.is_bot.is_(False)),
            func.count().filter(Click.is_bot.is_(True)),
            func.count().filter(Click.via_qr.is_(True)),
        )
    ).one()
    assert humans > 1000 and 0 < bots < humans / 10 and scans > 100
    assert session.scalar(select(func.count()).select_from(Click)) == humans + bots

    assert auth.sign_in(client, DEMO_EMAIL, DEMO_PASSWORD).headers["Location"] == "/dashboard"
    page = pages.text(client.get("/dashboard"))
    assert int(_tile(page, "bots")[0].replace(",", "")) > 0
    least = _table(page, "Least engaged touchpoints")
    # The trade fair stand and the sales rep card: no clicks, yet rated (they have exposure).
    assert least.count('class="num zero" data-figure="human_clicks">0<') == 2
    assert _figures(least, "Trade fair stand")["per_1k_reached"].startswith("0.0 0.0\u2013")
    # Journeys too, though TOUCHLINK_JOURNEYS is off here: the funnel, paths and moved-on rates.
    assert "these journeys were recorded while it was on, or seeded by the demo" in page
    for mode in ("closed", "open"):
        funnel = _table(pages.text(client.get(f"/dashboard?funnel={mode}")), "Funnel of journeys")
        journeys = [
            int(n.replace(",", ""))
            for n in re.findall(r'<div class="stage-figures">\s*<div><span class="strong" '
                                r'data-figure="journeys">([\d,]+)<', funnel)
        ]
        assert len(journeys) == 5 and journeys == sorted(journeys, reverse=True), mode
        assert journeys[-1] > 0  # fewer each stage, and some to the end
    assert len(re.findall(r'<tr data-path="', _table(page, "Paths"))) == 10
    most = _table(page, "Most engaged touchpoints")
    assert re.search(r'data-figure="moved_on"><span class="rate" title="\d+ of \d+ journeys', most)
    assert _figures(least, "Trade fair stand")["moved_on"] == "\u2014"  # nobody to move on
