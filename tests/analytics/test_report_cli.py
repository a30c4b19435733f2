"""`touchlink report touchpoints|stages`: tables for people, CSV and JSON for programs, over the
`journey` (tests/analytics/conftest.py) made through the API and redirects. The figures are the
API's: the same names, the same units."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskCliRunner


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
    assert title.endswith("UTC, humans only")
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
    ],
)
def test_bad_options_are_usage_errors_without_a_traceback(
    cli: FlaskCliRunner, args: list[str], option: str
) -> None:
    result = cli.invoke(args=["report", *args])
    assert result.exit_code == 2
    assert f"'{option}'" in result.output
    assert "Traceback" not in result.output
