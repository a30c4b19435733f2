"""`touchlink report touchpoints|stages`: tables for people, CSV and JSON for programs, over the
`journey` (tests/analytics/conftest.py) made through the API and redirects."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskCliRunner


def run(cli: FlaskCliRunner, *args: str) -> str:
    result = cli.invoke(args=["report", *args])
    assert result.exit_code == 0, result.output
    return result.output


def line_of(output: str, key: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if line.startswith(key + " ")]
    return line.split()


@pytest.mark.usefixtures("journey")
def test_touchpoint_table_shows_the_figures_in_columns(cli: FlaskCliRunner) -> None:
    output = run(cli, "touchpoints")
    title, _, header, *rows = output.splitlines()
    assert title.startswith("Touchpoints, most engaged first: ")
    assert title.endswith("humans only")
    assert header.split()[:4] == ["TOUCHPOINT", "NAME", "CHANNEL", "CLICKS"]
    assert [row.split()[0] for row in rows] == [
        "insta-bio", "store-flyer", "help-desk", "packaging",
    ]
    # key, name (two words), channel, clicks, scans, visitors, links, share, previous, change,
    # engagement, last click (date and time)
    flyer = line_of(output, "store-flyer")
    assert flyer[:12] == [
        "store-flyer", "Store", "flyer", "physical", "3", "2", "2", "1", "37.5%", "0", "—", "0.40%",
    ]
    assert line_of(output, "packaging")[-1] == "—"  # never clicked


@pytest.mark.usefixtures("journey")
def test_numbers_are_right_aligned(cli: FlaskCliRunner) -> None:
    output = run(cli, "touchpoints", "--bots")
    _, _, header, *rows = output.splitlines()
    end = header.index("CLICKS") + len("CLICKS")
    assert [row[:end].split()[-1] for row in rows] == ["5", "5", "1", "0"]
    assert all(row[end] == " " for row in rows)
    assert "bots included" in output.splitlines()[0]


@pytest.mark.usefixtures("journey")
def test_least_lists_touchpoints_without_clicks_first(cli: FlaskCliRunner) -> None:
    output = run(cli, "touchpoints", "--least", "--limit", "2")
    _, _, _, *rows = output.splitlines()
    assert [row.split()[0] for row in rows] == ["packaging", "help-desk"]
    assert "least engaged first" in output


@pytest.mark.usefixtures("journey")
def test_filters_reach_the_report(cli: FlaskCliRunner) -> None:
    output = run(cli, "touchpoints", "--stage", "awareness", "--format", "json")
    assert [r["touchpoint"]["key"] for r in json.loads(output)["rows"]] == [
        "insta-bio", "store-flyer",
    ]
    output = run(cli, "touchpoints", "--channel", "physical", "--campaign", "spring-launch",
                 "--format", "json")
    assert [(r["touchpoint"]["key"], r["clicks"]) for r in json.loads(output)["rows"]] == [
        ("store-flyer", 3),
    ]


@pytest.mark.usefixtures("journey")
def test_touchpoint_csv_and_json_agree(cli: FlaskCliRunner) -> None:
    today = datetime.now(UTC).date()
    period = ["--from", str(today - timedelta(days=6)), "--to", str(today)]
    parsed = list(csv.DictReader(io.StringIO(run(cli, "touchpoints", *period, "--format", "csv"))))
    body = json.loads(run(cli, "touchpoints", *period, "--format", "json"))
    assert body["from"] == f"{today - timedelta(days=6)}T00:00:00+00:00"
    assert body["to"] == f"{today + timedelta(days=1)}T00:00:00+00:00"
    assert [(p["touchpoint_key"], int(p["clicks"]), float(p["share"])) for p in parsed] == [
        (r["touchpoint"]["key"], r["clicks"], r["share"]) for r in body["rows"]
    ]
    assert [r["clicks"] for r in body["rows"]] == [4, 3, 1, 0]


@pytest.mark.usefixtures("journey")
def test_stage_table_csv_and_json(cli: FlaskCliRunner) -> None:
    output = run(cli, "stages")
    title, _, header, *rows = output.splitlines()
    assert title.startswith("Journey stages: ")
    assert header.split()[:3] == ["#", "STAGE", "NAME"]
    assert [row.split()[1] for row in rows] == [
        "awareness", "consideration", "decision", "post-purchase", "support",
    ]
    assert rows[0].split()[-5:] == ["6", "2", "5", "2", "80.0%"]
    assert rows[-1].split()[-1] == "—"
    parsed = list(csv.DictReader(io.StringIO(run(cli, "stages", "--format", "csv"))))
    body = json.loads(run(cli, "stages", "--format", "json"))
    assert [(p["stage_key"], int(p["visitors"])) for p in parsed] == [
        (r["stage"]["key"], r["visitors"]) for r in body["rows"]
    ]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["touchpoints", "--from", "garbage"], "--from"),
        (["touchpoints", "--from", "2026-02-01", "--to", "2026-01-01"], "--from"),
        (["touchpoints", "--stage", "nowhere"], "--stage"),
        (["touchpoints", "--limit", "0"], "--limit"),
        (["touchpoints", "--channel", "space"], "--channel"),
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
