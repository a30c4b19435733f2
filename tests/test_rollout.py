"""A retail rollout as a marketer runs it, end to end on each database: links on two branded
domains, each serving its own; a printed slug renamed and its old code followed; a Bitly export
and a CSV with bad rows imported; a sheet of codes printed and every code read back; a link-in-bio
hub whose buttons are clicked into the dashboard."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient, FlaskCliRunner

from tests.shortener.sheets import read_sheet
from tests.user_agents import IPHONE

BRAND, SHOP = "go.brand.test", "lnk.shop.test"
BITLY = """Title,Link,Custom Link,Destination URL,Date Created,Tags,Engagements
"Spring sale, Lyon",https://bit.ly/3xYz9Ab,https://go.brand.example/lyon-spring,\
https://shop.example.com/lyon?campaign=spring,2025-03-01 10:12:00,stores|spring,1204
Broken row,https://bit.ly/4zzzzzz,,not-a-url,2025-03-02 09:00:00,,0
"""
OURS = """url,touchpoint,stage,slug
https://shop.example.com/nice,store-flyer,awareness,nice
https://shop.example.com/brest,no-such-touchpoint,awareness,brest
https://shop.example.com/metz,store-flyer,awareness,NICE
"""


def _on(host: str) -> dict[str, Any]:
    return {"base_url": f"http://{host}", "headers": {"User-Agent": IPHONE}}


def test_a_rollout_on_two_domains_from_print_to_the_dashboard(
    client: FlaskClient, cli: FlaskCliRunner, admin: dict[str, str], marketer: dict[str, str],
    analyst: dict[str, str], touchpoint: dict[str, Any], auth: Any, tmp_path: Path,
) -> None:
    # Two branded domains, each with a link /spring of its own.
    for host in (BRAND, SHOP):
        assert client.post("/api/v1/domains", json={"host": host}, headers=admin).status_code == 201
    made = {}
    for host in (BRAND, SHOP):
        created = client.post("/api/v1/links", json={
            "url": f"https://shop.example.com/{host}", "touchpoint": "store-flyer",
            "stage": "awareness", "slug": "spring", "domain": host,
        }, headers=marketer)
        assert created.status_code == 201, created.get_json()
        made[host] = created.get_json()
        assert made[host]["short_url"] == f"http://{host}/spring"
    for host in (BRAND, SHOP):
        followed = client.get("/spring", **_on(host))
        assert followed.headers["Location"].startswith(f"https://shop.example.com/{host}?")
    assert client.get("/spring", **_on("elsewhere.test")).status_code == 404

    # The flyer on BRAND is printed; its slug is renamed; the printed code still leads there.
    renamed = client.patch(f"/api/v1/links/{made[BRAND]['id']}", json={"slug": "spring-26"},
                           headers=marketer)
    assert renamed.status_code == 200
    old, new = client.get("/SPRING", **_on(BRAND)), client.get("/spring-26", **_on(BRAND))
    assert old.headers["Location"] == new.headers["Location"]
    assert client.get("/spring", **_on(SHOP)).headers["Location"].startswith(
        f"https://shop.example.com/{SHOP}?"
    )

    # A Bitly export onto SHOP, and a CSV of ours with bad rows, each row answered.
    bitly, ours = tmp_path / "bitly.csv", tmp_path / "ours.csv"
    bitly.write_text(BITLY, encoding="utf-8")
    ours.write_text(OURS, encoding="utf-8")
    imported = cli.invoke(args=["import", "links", str(bitly), "--from", "bitly",
                                "--touchpoint", "store-flyer", "--stage", "awareness",
                                "--domain", SHOP])
    assert "Imported 1 of 2 links; 1 refused." in imported.stdout, imported.output
    assert client.get("/lyon-spring", **_on(SHOP)).headers["Location"] == (
        "https://shop.example.com/lyon?campaign=spring&utm_source=store-flyer&utm_medium=physical"
    )
    results = client.post("/api/v1/links/bulk", data=ours.read_bytes(),
                          headers={**marketer, "Content-Type": "text/csv"})
    assert results.status_code == 200, results.get_json()
    assert [(r["row"], r["status"], r.get("error", {}).get("code")) for r in
            results.get_json()["results"]] == [
        (1, "created", None), (2, "error", "unknown_reference"), (3, "error", "slug_taken"),
    ]

    # A sheet of the store flyer's codes: every code on it reads back as a live short URL.
    sheet = client.get("/api/v1/qr-sheet.pdf?touchpoint=store-flyer", headers=analyst)
    assert sheet.status_code == 200
    codes = [code.text for page in read_sheet(sheet.data) for code in page.codes]
    links = client.get("/api/v1/links?touchpoint=store-flyer&limit=200", headers=analyst)
    assert sorted(codes) == sorted(f"{link['short_url']}?qr=1"
                                   for link in links.get_json()["items"])
    for code in codes:
        host, slug = re.fullmatch(r"http://([^/]+)/([\w-]+)\?qr=1", code).groups()  # type: ignore[union-attr]
        assert client.get(f"/{slug}?qr=1", **_on(host)).status_code == 302

    # A hub with two buttons: its view and a tap on each button reach the dashboard.
    hub = client.post("/api/v1/hubs", json={
        "touchpoint": "store-flyer", "title": "Maison Lune", "slug": "lune", "buttons": [
            {"label": "Lookbook", "url": "https://shop.example.com/lookbook"},
            {"label": "Newsletter", "url": "https://shop.example.com/news", "stage": "decision"},
        ],
    }, headers=marketer)
    assert hub.status_code == 201, hub.get_json()
    body = hub.get_json()
    page = client.get("/lune", headers={"User-Agent": IPHONE})
    assert page.status_code == 200
    hrefs = re.findall(r'href="(http://[^"]+)"', page.get_data(as_text=True))
    buttons = [button["short_url"] for button in body["buttons"]]
    assert [href for href in hrefs if href in buttons] == buttons
    for button in buttons:
        assert client.get(button, headers={"User-Agent": IPHONE}).status_code == 302

    def clicks(link_id: int) -> int:
        report = client.get(f"/api/v1/reports/links/{link_id}", headers=analyst)
        assert report.status_code == 200, report.get_json()
        count: int = report.get_json()["figures"]["human_clicks"]
        return count

    assert clicks(body["link"]["id"]) == 1
    assert [clicks(button["link_id"]) for button in body["buttons"]] == [1, 1]
    # Before the rename, its old code and its new one after, then its scan off the sheet.
    assert clicks(made[BRAND]["id"]) == 4
    dashboard = auth.client("analyst").get(f"/dashboard/links/{body['buttons'][0]['link_id']}")
    assert dashboard.status_code == 200
    assert body["buttons"][0]["slug"] in dashboard.get_data(as_text=True)
