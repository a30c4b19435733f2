"""Who a report window lists: the touchpoints that existed at some time in it (made before it
ended, not archived before it began) or had clicks in it; archived ones keep their figures and
say so; `links` counts the links live at some time in the window. Through the reports API."""

from __future__ import annotations

from typing import Any

import pytest

JANUARY = "2026-01-01T00:00:00+00:00"
FEBRUARY = {"from": "2026-02-01", "to": "2026-02-28"}
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
def history(shop: Any, ingest: Any, people: Any) -> dict[str, int]:
    """A workspace with a past; the ids of flyer's links.

    flyer    made in January: spring (live), old (archived 20 January), expired (25 January),
             closed (archived 10 February, clicked on 3 February), newer (made 20 February),
             later (made 5 March); spring clicked on 2 and 3 February
    gone     made in January, gone-link clicked on 5 February, archived on 20 February
    during   made on 14 February, never clicked
    late     made on 10 March, late-link clicked on 12 March
    """
    shop.touchpoint("flyer", "physical", created_at=JANUARY)
    shop.touchpoint("gone", "physical", created_at=JANUARY)
    shop.touchpoint("during", "digital", created_at="2026-02-14T09:00:00+00:00")
    shop.touchpoint("late", "digital", created_at="2026-03-10T09:00:00+00:00")
    ids = {
        "spring": shop.link("spring", "flyer", "awareness", created_at=JANUARY)["id"],
        "old": shop.link("old", "flyer", "awareness", created_at=JANUARY)["id"],
        "expired": shop.link(
            "expired", "flyer", "awareness", created_at=JANUARY,
            expires_at="2026-01-25T00:00:00+00:00",
        )["id"],
        "closed": shop.link("closed", "flyer", "decision", created_at=JANUARY)["id"],
        "newer": shop.link("newer", "flyer", "awareness",
                           created_at="2026-02-20T00:00:00+00:00")["id"],
        "later": shop.link("later", "flyer", "awareness",
                           created_at="2026-03-05T00:00:00+00:00")["id"],
    }
    shop.link("gone-link", "gone", "awareness", created_at=JANUARY)
    shop.link("late-link", "late", "awareness", created_at="2026-03-10T09:00:00+00:00")
    ingest.visits(
        "spring",
        ("2026-02-02T10:00:00+00:00", people.anna),
        ("2026-02-03T10:00:00+00:00", people.ben),
    )
    ingest.visits("closed", ("2026-02-03T11:00:00+00:00", people.clara))
    ingest.visits("gone-link", ("2026-02-05T11:00:00+00:00", people.david))
    ingest.visits("late-link", ("2026-03-12T11:00:00+00:00", people.anna))
    shop.archive_link(ids["old"], at="2026-01-20T00:00:00+00:00")
    shop.archive_link(ids["closed"], at="2026-02-10T00:00:00+00:00")
    shop.archive("gone", at="2026-02-20T00:00:00+00:00")
    return ids


def rows(body: Any) -> dict[str, tuple[Any, ...]]:
    return {
        r["touchpoint"]["key"]: (r["clicks"], r["links"], r["archived"], r["share"])
        for r in body["rows"]
    }


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("order", ["most", "least"])
def test_a_window_lists_who_existed_in_it_and_keeps_archived_figures(
    reports: Any, order: str
) -> None:
    february = rows(reports.get("touchpoints", order=order, **FEBRUARY))
    march = rows(reports.get("touchpoints", order=order, **MARCH))

    assert february == {
        "flyer": (3, 3, False, 0.75),  # spring, closed (archived during it), newer
        "gone": (1, 1, True, 0.25),  # archived since, its clicks still count
        "during": (0, 0, False, 0.0),  # made in the window: it existed there
    }  # `late` was made after February ended
    assert march == {
        "flyer": (0, 3, False, 0.0),  # spring, newer, later
        "late": (1, 1, False, 1.0),
        "during": (0, 0, False, 0.0),
    }  # `gone` was archived before March began and had no click in it


@pytest.mark.usefixtures("history")
def test_a_touchpoint_made_after_a_window_is_not_in_its_other_reports(reports: Any) -> None:
    stages = reports.get("stages", **FEBRUARY)["rows"]
    series = reports.get("timeseries", **FEBRUARY)["series"]

    assert [r["touchpoints"] for r in stages][:3] == [2, 0, 1]  # flyer and gone; flyer
    assert sorted(s["key"] for s in series) == ["flyer", "gone"]


@pytest.mark.usefixtures("history")
def test_a_touchpoints_drill_down_lists_its_links_live_in_the_window(
    reports: Any, history: dict[str, int]
) -> None:
    february = reports.get("touchpoints/flyer", **FEBRUARY)
    march = reports.get("touchpoints/flyer", **MARCH)

    assert [(r["link"]["slug"], r["link"]["archived"], r["clicks"]) for r in february["links"]] == [
        ("spring", False, 2), ("closed", True, 1), ("newer", False, 0),
    ]
    assert sorted(r["link"]["slug"] for r in march["links"]) == ["later", "newer", "spring"]
    assert february["figures"]["links"] == 3


def test_an_archived_link_keeps_its_clicks_in_every_total(
    reports: Any, shop: Any, link: dict[str, Any], people: Any
) -> None:
    shop.visit("spring", people.anna)
    shop.visit("spring", people.ben, qr=True)
    before = reports.get("touchpoints")["rows"][0]

    shop.archive_link(link["id"])
    shop.archive("store-flyer")
    after = reports.get("touchpoints")["rows"][0]

    assert (after["clicks"], after["scans"], after["visitors"], after["links"]) == (
        before["clicks"], before["scans"], before["visitors"], before["links"]
    ) == (2, 1, 2, 1)
    assert (before["archived"], after["archived"]) == (False, True)
    assert reports.get("stages")["rows"][0]["clicks"] == 2
    assert reports.get("campaigns")["rows"][0]["clicks"] == 2
