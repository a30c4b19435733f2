"""`touchlink report touchpoints|stages|funnel|paths|next`: tables for people, CSV and JSON for
programs, over the `journey` (tests/analytics/conftest.py) made through the API and redirects, and
over journeys' clicks stored through the real ingest (`WALKS`), whose figures the tests work out
from what they sent. The figures are the API's: the same names, the same units."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from analytics.reports.rates import rate
from tests.user_agents import GOOGLEBOT, IPHONE


def run(cli: FlaskCliRunner, *args: str) -> str:
    result = cli.invoke(args=["report", *args])
    assert result.exit_code == 0, result.output
    return result.output


def line_of(output: str, key: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if line.startswith(key + " ")]
    return line.split()


def table(output: str) -> tuple[str, list[str], list[list[str]]]:
    """The title, the header's words and the rows' words of a table."""
    title, _, header, *rest = output.splitlines()
    rows = [line.split() for line in rest if line.strip()]
    return title, header.split(), rows


@pytest.mark.usefixtures("journey")
def test_touchpoint_table_shows_the_figures_in_columns(cli: FlaskCliRunner) -> None:
    output = run(cli, "touchpoints")
    title, header, rows = table(output)
    assert title.startswith("Touchpoints, most engaged first: ")
    # The window ends at the next hour: whole days, "(UTC)", when that is midnight.
    assert re.search(r" \(?UTC\)?, humans only$", title), title
    assert header == [
        "TOUCHPOINT", "NAME", "CHANNEL", "CLICKS", "HUMAN", "BOTS", "SCANS", "VISITORS", "LINKS",
        "SHARE", "PREVIOUS", "CHANGE", "PER", "1K", "REACHED", "LAST", "CLICK",
    ]
    assert [row[0] for row in rows] == [
        "insta-bio", "store-flyer", "help-desk", "old-poster", "packaging",
    ]
    # key, name (two words), channel, clicks, human, bots, scans, visitors, links, share,
    # previous, change, per 1k reached with its interval, last click (date and time)
    flyer = line_of(output, "store-flyer")
    assert flyer[:16] == [
        "store-flyer", "Store", "flyer", "physical", "3", "3", "2", "2", "2", "1", "33.3%", "0",
        "too", "few", "4.0", "(1.1-14.5)",
    ]
    assert line_of(output, "packaging")[-1] == "—"  # never clicked
    assert line_of(output, "old-poster")[:2] == ["old-poster", "(archived)"]
    assert "ENGAGEMENT" not in output


@pytest.mark.usefixtures("journey")
def test_mail_scanners_get_a_column_once_there_are_any(cli: FlaskCliRunner, shop: Any) -> None:
    assert "SCANNERS" not in run(cli, "touchpoints")
    chrome = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36"
    )
    shop.visit("spring", ("205.139.110.61", chrome))  # Mimecast's URL Protect opening the link

    output = run(cli, "touchpoints")

    header = table(output)[1]
    assert header[5:9] == ["BOTS", "MAIL", "SCANNERS", "SCANS"]
    # key, name (two words), channel, clicks, human, bots, mail scanners
    assert line_of(output, "store-flyer")[4:8] == ["3", "3", "3", "1"]


@pytest.mark.usefixtures("journey")
def test_the_rate_in_the_table_is_the_apis(cli: FlaskCliRunner, reports: Any) -> None:
    output = run(cli, "touchpoints")
    for row in reports.get("touchpoints")["rows"]:
        words = " ".join(line_of(output, row["touchpoint"]["key"]))
        if row["per_1k_reached"] is None:
            continue
        shown = (f"{row['per_1k_reached']:.1f} "
                 f"({row['per_1k_reached_low']:.1f}-{row['per_1k_reached_high']:.1f})")
        assert shown in words, (shown, words)


@pytest.mark.usefixtures("journey")
def test_numbers_are_right_aligned(cli: FlaskCliRunner) -> None:
    output = run(cli, "touchpoints", "--bots")
    _, _, header, *rows = output.splitlines()
    end = header.index("CLICKS") + len("CLICKS")
    assert [row[:end].split()[-1] for row in rows] == ["5", "5", "1", "1", "0"]
    assert all(row[end] == " " for row in rows)
    assert "bots included" in output.splitlines()[0]
    assert line_of(output, "store-flyer")[4:7] == ["5", "3", "2"]  # clicks, human, bots


@pytest.mark.usefixtures("journey")
def test_least_lists_touchpoints_without_clicks_first(cli: FlaskCliRunner) -> None:
    _, _, rows = table(run(cli, "touchpoints", "--least", "--limit", "2"))
    assert [row[0] for row in rows] == ["packaging", "help-desk"]
    assert "least engaged first" in run(cli, "touchpoints", "--least")


@pytest.mark.usefixtures("journey")
def test_ranked_by_the_rate_those_without_exposure_come_last_and_are_counted(
    cli: FlaskCliRunner,
) -> None:
    output = run(cli, "touchpoints", "--by", "per_1k_reached")
    title, _, rows = table(output)
    assert "by visitors per 1,000 reached" in title
    assert [row[0] for row in rows[:2]] == ["store-flyer", "packaging"]  # 4.0, then 0.0
    assert output.splitlines()[-1] == "3 without exposure, listed last."
    body = json.loads(run(cli, "touchpoints", "--by", "per_1k_reached", "--format", "json"))
    assert (body["by"], body["without_reach"]) == ("per_1k_reached", 3)


@pytest.mark.usefixtures("journey")
def test_filters_reach_the_report(cli: FlaskCliRunner) -> None:
    output = run(cli, "touchpoints", "--stage", "awareness", "--format", "json")
    assert [r["touchpoint"]["key"] for r in json.loads(output)["rows"]] == [
        "insta-bio", "store-flyer", "old-poster",
    ]
    output = run(cli, "touchpoints", "--channel", "physical", "--campaign", "spring-launch",
                 "--format", "json")
    assert [(r["touchpoint"]["key"], r["clicks"]) for r in json.loads(output)["rows"]] == [
        ("store-flyer", 3),
    ]


@pytest.mark.usefixtures("journey")
def test_touchpoint_csv_and_json_agree_with_the_api(cli: FlaskCliRunner, reports: Any) -> None:
    today = datetime.now(UTC).date()
    window = ["--from", str(today - timedelta(days=6)), "--to", str(today)]
    parsed = list(csv.DictReader(io.StringIO(run(cli, "touchpoints", *window, "--format", "csv"))))
    body = json.loads(run(cli, "touchpoints", *window, "--format", "json"))
    assert body["from"] == f"{today - timedelta(days=6)}T00:00:00+00:00"
    api = reports.get("touchpoints", **{"from": window[1], "to": window[3]})
    assert body == api
    assert parsed == reports.csv("touchpoints", **{"from": window[1], "to": window[3]})
    assert [r["clicks"] for r in body["rows"]] == [4, 3, 1, 1, 0]


@pytest.mark.usefixtures("followed")
def test_the_moved_on_figures_in_csv_and_json_are_the_apis(
    cli: FlaskCliRunner, reports: Any
) -> None:
    body = json.loads(run(cli, "touchpoints", "--format", "json"))
    parsed = list(csv.DictReader(io.StringIO(run(cli, "touchpoints", "--format", "csv"))))

    assert body == reports.get("touchpoints")
    assert parsed == reports.csv("touchpoints")
    figures = {r["touchpoint"]["key"]: (r["journeys"], r["moved_on"]) for r in body["rows"]}
    assert figures == {
        "help-desk": (2, 2), "store-flyer": (2, 1), "insta-bio": (3, 1), "packaging": (1, 0),
        "old-poster": (0, 0),
    }
    flyer = next(line for line in parsed if line["touchpoint_key"] == "store-flyer")
    assert (flyer["journeys"], flyer["moved_on"], flyer["moved_on_rate"]) == ("2", "1", "0.5")


@pytest.mark.usefixtures("journey")
def test_visitors_by_stage_as_a_table_csv_and_json(cli: FlaskCliRunner, reports: Any) -> None:
    output = run(cli, "stages")
    title, header, rows = table(output)
    assert title.startswith("Visitors by stage: ")
    assert header == [
        "#", "STAGE", "NAME", "CLICKS", "HUMAN", "BOTS", "SCANS", "VISITORS", "TOUCHPOINTS",
        "NEXT/THIS",
    ]
    assert [row[1] for row in rows[:5]] == [
        "awareness", "consideration", "decision", "post-purchase", "support",
    ]
    assert rows[0][-7:] == ["7", "7", "3", "2", "6", "3", "0.17"]  # 1 visitor next, of 6
    assert rows[4][-1] == "—"
    assert output.splitlines()[-1] == (
        "NEXT/THIS: the next stage's visitors over this stage's (totals, not the same people)."
    )
    assert "drop" not in output.lower()
    parsed = list(csv.DictReader(io.StringIO(run(cli, "stages", "--format", "csv"))))
    body = json.loads(run(cli, "stages", "--format", "json"))
    assert body == reports.get("stages")
    assert [(p["stage_key"], int(p["visitors"]), p["next_stage_ratio"]) for p in parsed] == [
        (r["stage"]["key"], r["visitors"], "" if r["next_stage_ratio"] is None
         else str(r["next_stage_ratio"]))
        for r in body["rows"]
    ]


def test_an_empty_window_says_so(cli: FlaskCliRunner, link: dict[str, Any]) -> None:
    output = run(cli, "touchpoints", "--from", "2020-01-01", "--to", "2020-01-02")

    assert output.splitlines() == [
        "Touchpoints, most engaged first: 2020-01-01 to 2020-01-02 (UTC), humans only",
        "No clicks in this window: nothing to rank.",
    ]


def test_a_comparable_change_is_a_percentage_and_too_few_say_so(
    cli: FlaskCliRunner, shop: Any, ingest: Any
) -> None:
    shop.touchpoint("flyer", "physical", created_at="2026-01-01T00:00:00+00:00")
    shop.touchpoint("radio", "human", created_at="2026-01-01T00:00:00+00:00")
    shop.link("spring", "flyer", "awareness", created_at="2026-01-01T00:00:00+00:00")
    shop.link("spot", "radio", "awareness", created_at="2026-01-01T00:00:00+00:00")
    for at, clicks in (("2026-02-25T10:00:00+00:00", 20), ("2026-03-04T10:00:00+00:00", 30)):
        ingest.click("spring", at, ip="203.0.113.7", agent="Mozilla/5.0 (iPhone)", times=clicks)
    ingest.click("spot", "2026-02-25T10:00:00+00:00", ip="203.0.113.8", agent="Mozilla/5.0")

    output = run(cli, "touchpoints", "--from", "2026-03-02", "--to", "2026-03-08")

    assert line_of(output, "flyer")[10:12] == ["20", "+50.0%"]
    assert line_of(output, "radio")[10:13] == ["1", "too", "few"]  # not -100 %


def test_the_table_is_in_the_workspaces_time_zone(
    make_app: Any, shop: Any, ingest: Any
) -> None:
    paris = make_app(timezone="Europe/Paris")
    shop.touchpoint("flyer", "physical", created_at="2026-01-01T00:00:00+00:00")
    shop.link("spring", "flyer", "awareness", created_at="2026-01-01T00:00:00+00:00")
    ingest.into(paris).click("spring", "2026-03-03T23:30:00+00:00", ip="203.0.113.7",
                             agent="Mozilla/5.0 (iPhone)")

    output = run(paris.test_cli_runner(), "touchpoints", "--from", "2026-03-04", "--to",
                 "2026-03-04")

    assert output.splitlines()[0] == (
        "Touchpoints, most engaged first: 2026-03-04 to 2026-03-04 (Europe/Paris), humans only"
    )
    assert line_of(output, "flyer")[-2:] == ["2026-03-04", "00:30"]  # local time


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["touchpoints", "--from", "garbage"], "--from"),
        (["touchpoints", "--from", "2026-02-01", "--to", "2026-01-01"], "--from"),
        (["touchpoints", "--from", "2026-02-01T10:30"], "--from"),
        (["touchpoints", "--stage", "nowhere"], "--stage"),
        (["touchpoints", "--limit", "0"], "--limit"),
        (["touchpoints", "--channel", "space"], "--channel"),
        (["touchpoints", "--by", "visitors"], "--by"),
        (["stages", "--to", "2026-13-01"], "--to"),
        (["stages", "--format", "xml"], "--format"),
        (["funnel", "--mode", "sideways"], "--mode"),
        (["funnel", "--mode", "OPEN"], "--mode"),
        (["funnel", "--stage", "nowhere"], "--stage"),
        (["funnel", "--from", "garbage"], "--from"),
        (["paths", "--limit", "0"], "--limit"),
        (["paths", "--limit", "1001"], "--limit"),
        (["paths", "--limit", "ten"], "--limit"),
        (["paths", "--stage", "nowhere"], "--stage"),
        (["next", "store-flyer", "--channel", "space"], "--channel"),
        (["next"], "TOUCHPOINT_KEY"),
    ],
)
def test_bad_options_are_usage_errors_without_a_traceback(
    cli: FlaskCliRunner, args: list[str], option: str
) -> None:
    result = cli.invoke(args=["report", *args])
    assert result.exit_code == 2
    assert f"'{option}'" in result.output
    assert "Traceback" not in result.output


def test_next_for_an_unknown_touchpoint_is_an_error_naming_it(
    cli: FlaskCliRunner, link: dict[str, Any]
) -> None:
    for fmt in ("table", "csv", "json"):
        result = cli.invoke(args=["report", "next", "no-such-touchpoint", "--format", fmt])

        assert result.exit_code == 1, result.output
        assert result.output == "Error: No touchpoint with key 'no-such-touchpoint'.\n"
        assert "Traceback" not in result.output

    result = cli.invoke(args=["report", "next", "store-flyer", "--stage", "nowhere"])
    assert result.exit_code == 2
    assert "Invalid value for '--stage': no stage with key 'nowhere'" in result.output


# --- journeys ------------------------------------------------------------------------------------

# slug: (touchpoint, its channel, the link's stage and its place in the journey)
JOURNEY_LINKS = {
    "flyer": ("flyer", "physical", "awareness", 0),
    "news": ("newsletter", "digital", "consideration", 1),
    "checkout": ("store", "human", "decision", 2),
}
STAGES = ("awareness", "consideration", "decision", "post-purchase", "support")
DAY = datetime(2026, 3, 3, 10, tzinfo=UTC)
# --from 2026-03-02 --to 2026-03-08: [2026-03-02 00:00, 2026-03-09 00:00) UTC
WINDOW = ("--from", "2026-03-02", "--to", "2026-03-08")
WINDOW_START, WINDOW_END = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
# Journey id: the first click's time and the links clicked, an hour apart.
WALKS: dict[str, tuple[datetime, tuple[str, ...]]] = {
    "a" * 32: (DAY, ("flyer", "news", "checkout")),
    "b" * 32: (DAY, ("flyer", "news")),
    "c" * 32: (DAY, ("flyer", "flyer")),
    "d" * 32: (DAY, ("news", "flyer")),  # consideration before awareness
    "e" * 32: (DAY, ("checkout",)),
    "f" * 32: (DAY + timedelta(days=1), ("flyer", "news", "flyer")),
    "0" * 32: (DAY + timedelta(days=2), ("flyer", "news")),
    "1" * 32: (DAY + timedelta(days=2), ("flyer", "checkout")),  # skips consideration
    "4" * 32: (DAY + timedelta(days=3), ("flyer", "news", "news")),
    "2" * 32: (datetime(2026, 3, 8, 23, tzinfo=UTC), ("flyer", "news")),  # ends after the window
    "3" * 32: (datetime(2026, 3, 10, 10, tzinfo=UTC), ("flyer", "news")),  # after the window
}
Touches = list[tuple[datetime, str]]  # (when, slug), in time order


def inside(keep: Callable[[str], bool] = bool) -> list[Touches]:
    """The window's touches of each journey that `keep` keeps (by slug), journeys without any
    left out."""
    found = []
    for start, slugs in WALKS.values():
        touches = [(start + timedelta(hours=i), slug) for i, slug in enumerate(slugs)]
        kept = [(at, s) for at, s in touches if WINDOW_START <= at < WINDOW_END and keep(s)]
        if kept:
            found.append(kept)
    return found


def place(slug: str) -> int:
    return JOURNEY_LINKS[slug][3]


def closed_funnel() -> list[int]:
    """Journeys with touches at stages 1..k in order, for each k (touches are an hour apart)."""
    reached = [0] * len(STAGES)
    for touches in inside():
        depth = 0
        for _, slug in touches:
            depth += place(slug) == depth
        for k in range(depth):
            reached[k] += 1
    return reached


def open_funnel() -> tuple[list[int], list[int]]:
    """Journeys with a touch at each stage, and those with a later touch at the next one."""
    reached, continued = [0] * len(STAGES), [0] * len(STAGES)
    for touches in inside():
        first = {}
        for at, slug in touches:
            first.setdefault(place(slug), at)
        for k, at in first.items():
            reached[k] += 1
            continued[k] += any(place(s) == k + 1 and t > at for t, s in touches)
    return reached, continued


def path_of(touches: Touches) -> str:
    keys = [JOURNEY_LINKS[slug][0] for _, slug in touches]
    return " > ".join(key for key, _ in groupby(keys))


def next_after(touchpoint: str) -> Counter[str | None]:
    counted: Counter[str | None] = Counter()
    for touches in inside():
        keys = [JOURNEY_LINKS[slug][0] for _, slug in touches]
        if touchpoint in keys:
            later = keys[keys.index(touchpoint):]
            counted[next((key for key in later if key != touchpoint), None)] += 1
    return counted


def percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}"


@dataclass(frozen=True, slots=True)
class Walked:
    """The CLI and the reports API of an app that follows journeys, over the `WALKS`."""

    cli: FlaskCliRunner
    reports: Any

    def run(self, *args: str) -> str:
        return run(self.cli, *args, *WINDOW)

    def api(self, path: str, **params: Any) -> Any:
        return self.reports.get(path, **{"from": WINDOW[1], "to": WINDOW[3]}, **params)

    def api_csv(self, path: str, **params: Any) -> list[dict[str, str]]:
        return self.reports.csv(path, **{"from": WINDOW[1], "to": WINDOW[3]}, **params)


@pytest.fixture
def cookie_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(journeys="cookie")


@pytest.fixture
def walked(cookie_app: Flask, shop: Any, ingest: Any, reports: Any) -> Walked:
    """The `WALKS` stored through the ingest the worker uses, beside a bot's click on a journey
    and a human click on none (neither followed)."""
    made = "2026-01-01T00:00:00+00:00"
    for slug, (touchpoint, channel, stage, _) in JOURNEY_LINKS.items():
        shop.touchpoint(touchpoint, channel, created_at=made)
        shop.link(slug, touchpoint, stage, created_at=made)
    store = ingest.into(cookie_app)
    for i, (journey, (start, slugs)) in enumerate(WALKS.items()):
        for hour, slug in enumerate(slugs):
            store.click(slug, start + timedelta(hours=hour), ip=f"192.0.2.{i + 1}", agent=IPHONE,
                        journey=journey)
    store.click("checkout", DAY, ip="66.249.66.1", agent=GOOGLEBOT, journey="9" * 32)
    store.click("news", DAY, ip="192.0.2.99", agent=IPHONE)
    return Walked(cookie_app.test_cli_runner(), reports.on(cookie_app))


def test_the_closed_funnel_table_counts_the_journeys_sent(walked: Walked) -> None:
    reached = closed_funnel()
    output = walked.run("funnel")

    title, header, rows = table(output)
    assert title == f"Funnel (closed): 2026-03-02 to 2026-03-08 (UTC), {len(inside())} journeys"
    assert header == ["#", "STAGE", "NAME", "JOURNEYS", "CONTINUED", "DROP", "TO", "NEXT"]
    assert [row[1] for row in rows[:-1]] == list(STAGES)
    assert [row[-3:] for row in rows[:-1]] == [
        [str(reached[k]), str(reached[k + 1]),
         percent(reached[k] - reached[k + 1], reached[k]) if reached[k] else "—"]
        for k in range(len(STAGES) - 1)
    ] + [[str(reached[-1]), "—", "—"]]
    assert reached[:3] == [9, 5, 1]  # what the walks are made to give
    assert output.splitlines()[-1] == (
        "Closed: journeys with touches at stages 1..k, in order; CONTINUED: those at the next "
        "stage too."
    )


def test_the_open_funnel_table_counts_any_touch_at_a_stage(walked: Walked) -> None:
    reached, continued = open_funnel()
    output = walked.run("funnel", "--mode", "open")

    title, _, rows = table(output)
    assert title.startswith("Funnel (open): ")
    assert [row[-3:-1] for row in rows[:-2]] == [
        [str(reached[k]), str(continued[k])] for k in range(len(STAGES) - 1)
    ]
    assert rows[-2][-3:] == [str(reached[-1]), "—", "—"]
    assert rows[1][-1] == percent(reached[1] - continued[1], reached[1])
    assert (reached[:3], continued[:3]) == ([9, 6, 3], [5, 1, 0])  # not the closed figures
    assert output.splitlines()[-1] == (
        "Open: journeys with any touch at the stage; CONTINUED: those with a later touch at the "
        "next one."
    )


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_the_funnel_csv_and_json_are_the_apis(walked: Walked, mode: str) -> None:
    body = json.loads(walked.run("funnel", "--mode", mode, "--format", "json"))
    parsed = list(csv.DictReader(io.StringIO(walked.run("funnel", "--mode", mode,
                                                         "--format", "csv"))))

    assert body == walked.api("funnel", mode=mode)
    assert parsed == walked.api_csv("funnel", mode=mode)
    assert body["journeys"] == len(inside())
    reached = closed_funnel() if mode == "closed" else open_funnel()[0]
    assert [int(line["journeys"]) for line in parsed] == reached


def test_the_funnel_for_one_stage_keeps_its_row_counted_over_every_stage(walked: Walked) -> None:
    output = walked.run("funnel", "--stage", "consideration")
    body = json.loads(walked.run("funnel", "--stage", "consideration", "--format", "json"))

    _, _, rows = table(output)
    reached = closed_funnel()
    assert rows[:-1] == [["2", "consideration", "Consideration", str(reached[1]),
                          str(reached[2]), percent(reached[1] - reached[2], reached[1])]]
    assert body == walked.api("funnel", stage="consideration")


def test_the_paths_table_counts_the_journeys_that_follow_each_path(walked: Walked) -> None:
    journeys = inside()
    counted = Counter(path_of(touches) for touches in journeys)
    output = walked.run("paths")

    title, header, _ = table(output)
    assert title == (
        f"Paths, most followed first: 2026-03-02 to 2026-03-08 (UTC), {len(journeys)} journeys"
    )
    assert header == ["JOURNEYS", "SHARE", "PATH"]
    shown = [line.split(maxsplit=2) for line in output.splitlines()[3:]]
    ranked = sorted(counted.items(), key=lambda item: (-item[1], item[0].split(" > ")))
    assert shown == [[str(n), percent(n, len(journeys)), path] for path, n in ranked]
    assert shown[0] == ["3", "30.0%", "flyer > newsletter"]

    _, _, top = table(walked.run("paths", "--limit", "1"))
    assert top == [["3", "30.0%", "flyer", ">", "newsletter"]]


def test_the_paths_csv_and_json_are_the_apis_with_a_stage_filtering_touches(
    walked: Walked,
) -> None:
    for extra in ((), ("--stage", "awareness")):
        params = {"stage": extra[1]} if extra else {}
        body = json.loads(walked.run("paths", *extra, "--format", "json"))
        parsed = list(csv.DictReader(io.StringIO(walked.run("paths", *extra, "--format", "csv"))))
        assert body == walked.api("paths", **params)
        assert parsed == walked.api_csv("paths", **params)

    # At the first stage only: the flyer's touches, one path.
    at_flyer = inside(lambda slug: slug == "flyer")
    _, _, rows = table(walked.run("paths", "--stage", "awareness"))
    assert rows == [[str(len(at_flyer)), "100.0%", "flyer"]]


def test_next_lists_where_the_journeys_went_after_a_touchpoint(walked: Walked) -> None:
    counted = next_after("flyer")
    total = sum(counted.values())
    output = walked.run("next", "flyer")

    title, header, _ = table(output)
    assert title == (
        f"Next after flyer: 2026-03-02 to 2026-03-08 (UTC), {total} journeys touched it"
    )
    assert header == ["TOUCHPOINT", "NAME", "CHANNEL", "JOURNEYS", "SHARE"]
    shown = [line.rsplit(maxsplit=2)[-2:] for line in output.splitlines()[3:]]
    assert shown == [[str(counted["newsletter"]), percent(counted["newsletter"], total)],
                     [str(counted[None]), percent(counted[None], total)],
                     [str(counted["store"]), percent(counted["store"], total)]]
    assert line_of(output, "newsletter")[:3] == ["newsletter", "Newsletter", "digital"]
    assert output.splitlines()[4].startswith("(no further touch)  ")
    assert (counted["newsletter"], counted[None], counted["store"]) == (5, 3, 1)


def test_next_csv_and_json_are_the_apis(walked: Walked) -> None:
    for extra in ((), ("--stage", "consideration")):
        params = {"stage": extra[1]} if extra else {}
        body = json.loads(walked.run("next", "newsletter", *extra, "--format", "json"))
        parsed = list(csv.DictReader(io.StringIO(
            walked.run("next", "newsletter", *extra, "--format", "csv")
        )))
        assert body == walked.api("next", touchpoint="newsletter", **params)
        assert parsed == walked.api_csv("next", touchpoint="newsletter", **params)
    assert body["journeys"] == len(inside(lambda slug: slug == "news"))
    assert [line["touchpoint_name"] for line in parsed] == ["(no further touch)"]


def moved_on(touchpoint: str) -> tuple[int, int]:
    """Journeys with a touch at `touchpoint`, and those with a later touch at a later stage."""
    touched = went_on = 0
    for touches in inside():
        at = [(t, place(slug)) for t, slug in touches if JOURNEY_LINKS[slug][0] == touchpoint]
        if at:
            touched += 1
            went_on += any(t > t0 and place(s) > k for t0, k in at for t, s in touches)
    return touched, went_on


def test_the_touchpoint_table_shows_the_moved_on_share_ranked_by_it(walked: Walked) -> None:
    output = walked.run("touchpoints", "--by", "moved_on")

    title, header, rows = table(output)
    assert title.startswith("Touchpoints, most engaged first by share of journeys moved on: ")
    assert header[header.index("REACHED") + 1:] == ["JOURNEYS", "MOVED", "ON", "LAST", "CLICK"]
    expected = {}
    for touchpoint in ("flyer", "newsletter", "store"):
        touched, went_on = moved_on(touchpoint)
        value, low, high = rate(went_on, touched)
        assert value is not None and low is not None and high is not None
        expected[touchpoint] = [str(touched), f"{value:.1%}", f"({low * 100:.1f}-{high:.1%})"]
    assert {row[0]: row[-5:-2] for row in rows} == expected
    assert [row[0] for row in rows] == ["flyer", "newsletter", "store"]  # 66.7 %, 16.7 %, 0 %
    assert expected["flyer"][:2] == ["9", "66.7%"]

    least = walked.run("touchpoints", "--by", "moved_on", "--least")
    assert [row[0] for row in table(least)[2]] == ["store", "newsletter", "flyer"]


def test_the_touchpoint_csv_and_json_ranked_by_moved_on_are_the_apis(walked: Walked) -> None:
    body = json.loads(walked.run("touchpoints", "--by", "moved_on", "--format", "json"))
    parsed = list(csv.DictReader(io.StringIO(
        walked.run("touchpoints", "--by", "moved_on", "--format", "csv")
    )))

    assert body == walked.api("touchpoints", by="moved_on")
    assert parsed == walked.api_csv("touchpoints", by="moved_on")
    assert [(r["touchpoint"]["key"], r["journeys"], r["moved_on"]) for r in body["rows"]] == [
        (key, *moved_on(key)) for key in ("flyer", "newsletter", "store")
    ]


HINT = ("Journeys are off: set TOUCHLINK_JOURNEYS=cookie or cookieless to follow them "
        "(see docs/journeys.md).")


@pytest.mark.parametrize(
    ("args", "title"),
    [
        (["funnel"], "Funnel (closed): "),
        (["paths"], "Paths, most followed first: "),
        (["next", "store-flyer"], "Next after store-flyer: "),
    ],
)
def test_without_journeys_the_reports_say_so_and_how_to_turn_them_on(
    cli: FlaskCliRunner, cookie_app: Flask, link: dict[str, Any], shop: Any, people: Any,
    args: list[str], title: str,
) -> None:
    shop.visit("spring", people.anna)  # journeys are off: a click, no journey

    off = run(cli, *args).splitlines()
    on = run(cookie_app.test_cli_runner(), *args).splitlines()

    assert off[0].startswith(title)
    assert off[1:] == ["No journeys in this window.", HINT]
    assert on[1:] == ["No journeys in this window."]


def test_ranked_by_moved_on_without_journeys_the_table_says_so(
    cli: FlaskCliRunner, link: dict[str, Any], shop: Any, people: Any
) -> None:
    shop.visit("spring", people.anna)

    output = run(cli, "touchpoints", "--by", "moved_on")

    assert "MOVED ON" not in output
    assert line_of(output, "store-flyer")[4] == "1"  # clicks
    assert output.splitlines()[-2:] == ["No journeys in this window: listed by clicks.", HINT]

