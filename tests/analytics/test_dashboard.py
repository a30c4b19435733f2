"""The analyst dashboard through the real path: clicks on short links → ingest → rollups → page,
and each of its tables as CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import Click
from shortener.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.user_agents import GOOGLEBOT, IPHONE

Visit = Callable[..., None]


@pytest.fixture
def visit(client: FlaskClient) -> Visit:
    """`visit(slug, ip, agent=IPHONE, qr=False)`: one customer following a short link."""

    def follow(slug: str, ip: str, *, agent: str = IPHONE, qr: bool = False) -> None:
        response = client.get(
            f"/{slug}?qr=1" if qr else f"/{slug}",
            headers={"User-Agent": agent},
            environ_base={"REMOTE_ADDR": ip},
        )
        assert response.status_code == 302

    return follow


@pytest.fixture
def journey(
    client: FlaskClient, marketer: dict[str, str], link: dict[str, Any], visit: Visit
) -> None:
    """store-flyer: spring (awareness) 3 visitors, one scan, plus a bot; faq (decision) 1 visitor.
    A silent touchpoint with a post-purchase link; nobody serves consideration or support."""
    for body in (
        {"key": "silent-poster", "name": "Silent poster", "channel": "physical"},
        {"key": "evil", "name": "<b>Bold</b> & <script>x</script>", "channel": "digital"},
    ):
        assert client.post("/api/v1/touchpoints", json=body, headers=marketer).status_code == 201
    for slug, touchpoint, stage in (
        ("faq", "store-flyer", "decision"),
        ("quiet", "silent-poster", "post-purchase"),
        ("evil", "evil", "post-purchase"),
    ):
        response = client.post(
            "/api/v1/links",
            json={"url": "https://shop.example.com/", "touchpoint": touchpoint,
                  "stage": stage, "slug": slug},
            headers=marketer,
        )
        assert response.status_code == 201
    visit("spring", "81.130.4.5", qr=True)
    visit("spring", "81.130.4.6")
    visit("spring", "81.130.4.7")
    visit("spring", "66.249.66.1", agent=GOOGLEBOT)
    visit("faq", "81.130.4.5")
    visit("evil", "90.12.34.56")


@pytest.fixture
def analyst_client(auth: Any) -> FlaskClient:
    client: FlaskClient = auth.client("analyst")
    return client


def _table(page: str, title: str) -> str:
    """The HTML of the section with this heading."""
    start = page.index(f">{title}</h2>")
    end = page.find("</section>", start)
    return page[start:end]


@pytest.mark.usefixtures("journey")
def test_most_and_least_engaged_side_by_side_with_silent_touchpoints_visible(
    analyst_client: FlaskClient, pages: Any
) -> None:
    page = pages.text(analyst_client.get("/dashboard"))

    most = _table(page, "Most engaged touchpoints")
    least = _table(page, "Least engaged touchpoints")
    assert "Store flyer" in most and "Silent poster" not in most
    assert "Silent poster" in least
    assert re.search(r"Silent poster</div>.*?<td class=\"num zero\">0</td>", least, re.S)
    flyer = re.search(r"Store flyer</div>.*?</tr>", most, re.S)
    assert flyer is not None
    numbers = re.findall(r'<td class="num[^"]*">([^<]*)</td>', flyer.group(0))
    assert numbers[:3] == ["4", "1", "4"]  # bots excluded: 4 human clicks, 1 scan, 4 visitors
    assert "8.0" in flyer.group(0)  # 4 visitors of 500 flyers: 8 per 1,000 reached
    kpis = page[page.index('class="kpis"'):page.index("Most engaged")]
    assert re.search(r"Human clicks</div>\s*<div class=\"value\">5<", kpis)
    assert re.search(r"Touchpoints without clicks</div>\s*<div class=\"value zero\">1<", kpis)


@pytest.mark.usefixtures("journey")
def test_bots_are_left_out_unless_the_box_is_ticked(
    analyst_client: FlaskClient, pages: Any
) -> None:
    with_bots = pages.text(analyst_client.get("/dashboard?bots=include"))

    kpis = with_bots[with_bots.index('class="kpis"'):with_bots.index("Most engaged")]
    assert re.search(r"Human clicks</div>\s*<div class=\"value\">6<", kpis)
    assert "bots included" in with_bots


@pytest.mark.usefixtures("journey")
def test_the_journey_is_drawn_in_stage_order_with_the_drop_and_the_gap(
    analyst_client: FlaskClient, pages: Any
) -> None:
    page = pages.text(analyst_client.get("/dashboard"))
    journey = _table(page, "The journey")

    names = re.findall(r'<li class="funnel-step[^"]*">\s*<div class="funnel-label">\s*'
                       r'<span class="strong">([^<]+)</span>', journey)
    assert names == ["Awareness", "Consideration", "Decision", "Post purchase", "Support"]
    assert journey.count("<svg") == 5
    assert "100% drop</span>\n        <span class=\"muted\">to Consideration" in journey
    assert 'class="funnel-step gap"' in journey
    gaps = re.findall(r'<span class="strong">([^<]+)</span>\s*<span class="gap-note">', journey)
    assert gaps == ["Consideration", "Support"]


@pytest.mark.usefixtures("journey")
def test_the_journey_map_shows_each_touchpoint_at_each_stage_with_empty_cells(
    analyst_client: FlaskClient, pages: Any
) -> None:
    page = pages.text(analyst_client.get("/dashboard"))
    jmap = _table(page, "Journey map")

    assert 'class="gap-col" title="No touchpoint serves this stage">Support · gap</th>' in jmap
    assert 'title="Store flyer at Awareness: 3 clicks, 3 visitors, 1 live link">3<' in jmap
    assert re.search(r'class="cell heat-5" title="Store flyer at Awareness', jmap)
    assert 'class="cell heat-0" title="Silent poster at Post purchase: 0 clicks' in jmap
    assert 'title="Silent poster has no link at Awareness">·<' in jmap


@pytest.mark.usefixtures("journey")
def test_clicks_over_time_and_where_they_come_from(analyst_client: FlaskClient, pages: Any) -> None:
    page = pages.text(analyst_client.get("/dashboard?range=7d&interval=hour&group_by=channel"))

    chart = _table(page, "Clicks over time")
    assert '<svg class="chart"' in chart
    assert "Human clicks per hour, by channel" in chart
    assert re.search(r"</svg> physical <span class=\"muted\">4</span>", chart)
    sources = page[page.index(">Scan or click</h3>"):]
    assert "QR code scan" in sources and "Click" in sources
    devices = page[page.index(">Device</h3>"):page.index(">Operating system</h3>")]
    assert "Mobile" in devices and "Bot" not in devices


@pytest.mark.usefixtures("journey")
def test_text_from_users_is_escaped_in_tables_and_charts(
    analyst_client: FlaskClient, pages: Any
) -> None:
    page = pages.text(analyst_client.get("/dashboard"))

    assert "<b>Bold</b>" not in page and "<script>x" not in page
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;" in page
    chart = _table(page, "Clicks over time")
    assert "<title>&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;: 1 click" in chart


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize(
    ("table", "header"),
    [
        ("most", "touchpoint_key,touchpoint_name,channel,clicks"),
        ("least", "touchpoint_key,touchpoint_name,channel,clicks"),
        ("stages", "stage_key,stage_name,position,clicks"),
        ("map", "touchpoint_key,touchpoint_name,channel,stage_key,stage_name,clicks,visitors"),
        ("timeseries", "bucket,group_key,group_name,clicks,scans,visitors"),
        ("device", "dimension,value,clicks,visitors,share"),
        ("referrer", "dimension,value,clicks,visitors,share"),
        ("source", "dimension,value,clicks,visitors,share"),
    ],
)
def test_every_table_downloads_as_csv_with_the_same_filters(
    analyst_client: FlaskClient, table: str, header: str, pages: Any
) -> None:
    page = pages.text(analyst_client.get("/dashboard?range=7d&channel=physical"))
    link = re.search(rf'href="(/dashboard\?format=csv&amp;table={table}&amp;[^"]+)"', page)
    assert link is not None, table
    url = link.group(1).replace("&amp;", "&")
    assert "range=7d" in url and "channel=physical" in url

    response = analyst_client.get(url)

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert ",".join(rows[0]).startswith(header)
    assert not any("evil" in ",".join(row) for row in rows[1:])  # the channel filter holds


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


@pytest.mark.usefixtures("journey")
def test_periods_presets_and_custom_dates(analyst_client: FlaskClient, pages: Any) -> None:
    week = pages.text(analyst_client.get("/dashboard?range=7d"))
    custom = pages.text(analyst_client.get("/dashboard?range=custom&from=2020-01-01&to=2020-01-31"))

    assert '<a href="/dashboard?range=7d' in week and 'aria-current="true">7 days</a>' in week
    assert "Jan 01, 2020 \u2013 Jan 31, 2020" in custom
    kpis = custom[custom.index('class="kpis"'):custom.index("Most engaged")]
    assert re.search(r"Human clicks</div>\s*<div class=\"value\">0<", kpis)


@pytest.mark.parametrize(
    "query",
    ["range=forever", "range=custom&from=2026-02-30", "range=custom&from=2026-03-02&to=2026-03-01",
     "channel=radio", "stage=nowhere", "interval=minute"],
)
def test_a_bad_filter_says_what_is_wrong_and_shows_the_default_period(
    analyst_client: FlaskClient, query: str, pages: Any
) -> None:
    response = analyst_client.get(f"/dashboard?{query}")

    assert response.status_code == 400
    assert 'class="flash flash-error"' in pages.text(response)
    assert "The last 30 days are shown instead." in pages.text(response)


def test_hourly_points_beyond_a_month_are_shown_by_day(
    analyst_client: FlaskClient, pages: Any
) -> None:
    page = pages.text(analyst_client.get("/dashboard?range=90d&interval=hour"))

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
    least = _table(page, "Least engaged touchpoints")
    assert least.count('class="num zero">0<') == 2  # the trade fair stand and the sales rep card
    visitors = [
        int(n.replace(",", ""))
        for n in re.findall(r'<div class="funnel-figures">\s*<span class="strong">([\d,]+)<', page)
    ]
    assert len(visitors) == 5 and visitors == sorted(visitors, reverse=True)  # it narrows
