"""People's words in the breakdowns: countries by name (the ISO code kept as the value), referrers
grouped by site from Snowplow's list (facebook.com, m., l. and lm.facebook.com are Facebook), the
hosts behind them for drill-down. Through real redirects and the reports API."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.models import Click
from tests.user_agents import IPHONE

# (IP address, Referer header): where the bundled country data places each address
VISITS = [
    ("81.130.4.5", "https://www.facebook.com/groups/x"),  # Great Britain
    ("81.130.4.6", "https://m.facebook.com/story.php?id=1"),
    ("90.12.34.56", "https://l.facebook.com/l.php?u=https%3A%2F%2Fgo.test%2Fspring"),  # France
    ("90.12.34.57", "https://lm.facebook.com/l.php"),
    ("8.8.8.8", "https://www.instagram.com/p/abc"),  # the United States
    ("8.8.4.4", "https://l.instagram.com/?u=x"),
    ("203.0.113.9", "https://blog.example.org/post"),  # a documentation address: no country
    ("203.0.113.10", "https://www.example.org/"),
    ("203.0.113.11", None),
]


@pytest.fixture
def visited(client: Any, link: dict[str, Any]) -> None:
    for ip, referrer in VISITS:
        headers = {"User-Agent": IPHONE, **({"Referer": referrer} if referrer else {})}
        response = client.get("/spring", headers=headers, environ_base={"REMOTE_ADDR": ip})
        assert response.status_code == 302


def rows(body: Any) -> list[tuple[str, str, int]]:
    return [(r["value"], r["label"], r["clicks"]) for r in body["rows"]]


@pytest.mark.usefixtures("visited")
def test_countries_are_named_and_keep_their_code(reports: Any) -> None:
    body = reports.get("breakdown", dimension="country")

    assert rows(body) == [
        ("", "Unknown", 3),
        ("FR", "France", 2),
        ("GB", "United Kingdom", 2),
        ("US", "United States", 2),
    ]


@pytest.mark.usefixtures("visited")
def test_referrers_are_grouped_by_site(reports: Any) -> None:
    body = reports.get("breakdown", dimension="referrer")

    assert rows(body) == [
        ("Facebook", "Facebook", 4),  # facebook.com, m., l. and lm.facebook.com
        ("Instagram", "Instagram", 2),
        ("", "Direct or unknown", 1),
        ("blog.example.org", "blog.example.org", 1),  # not on the list: the host itself
        ("example.org", "example.org", 1),
    ]
    assert body["total"] == 9


@pytest.mark.usefixtures("visited")
def test_the_hosts_behind_the_sites_are_there_for_drill_down(
    reports: Any, link: dict[str, Any]
) -> None:
    hosts = reports.get("breakdown", dimension="referrer_host", limit=20)
    detail = reports.get(f"links/{link['id']}")

    expected = [
        ("", "Direct or unknown", 1),
        ("blog.example.org", "blog.example.org", 1),
        ("example.org", "example.org", 1),
        ("facebook.com", "facebook.com", 1),
        ("instagram.com", "instagram.com", 1),
        ("l.facebook.com", "l.facebook.com", 1),
        ("l.instagram.com", "l.instagram.com", 1),
        ("lm.facebook.com", "lm.facebook.com", 1),
        ("m.facebook.com", "m.facebook.com", 1),
    ]
    assert rows(hosts) == expected
    assert rows({"rows": detail["breakdowns"]["referrer_host"]}) == expected
    assert detail["breakdowns"]["referrer"][0]["label"] == "Facebook"


@pytest.mark.usefixtures("visited")
def test_the_site_is_stored_with_each_click(session: Session) -> None:
    stored = sorted(
        (host or "", site or "")
        for host, site in session.execute(select(Click.referrer_host, Click.referrer_site))
    )

    assert stored == [
        ("", ""),
        ("blog.example.org", "blog.example.org"),
        ("example.org", "example.org"),
        ("facebook.com", "Facebook"),
        ("instagram.com", "Instagram"),
        ("l.facebook.com", "Facebook"),
        ("l.instagram.com", "Instagram"),
        ("lm.facebook.com", "Facebook"),
        ("m.facebook.com", "Facebook"),
    ]


@pytest.mark.usefixtures("visited")
def test_named_countries_and_sites_in_csv(reports: Any) -> None:
    countries = reports.csv("breakdown", dimension="country")
    sites = reports.csv("breakdown", dimension="referrer")

    # The code stays in `value`, the name people read in `label`, as in the JSON.
    assert [(c["value"], c["label"], c["clicks"]) for c in countries] == [
        ("", "Unknown", "3"), ("FR", "France", "2"), ("GB", "United Kingdom", "2"),
        ("US", "United States", "2"),
    ]
    assert [s["value"] for s in sites][:2] == ["Facebook", "Instagram"]
