"""The same question gets the same answer from the API (JSON and CSV), the CLI (JSON, CSV and its
table), the dashboard (its tables and its CSV downloads) and the drill-down pages."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from shortener.db import utcnow

# Figures asked of every surface, per touchpoint.
FIGURES = ("human_clicks", "scans", "visitors", "per_1k_reached")


class EngagementRows(HTMLParser):
    """The dashboard's engagement tables: per touchpoint key, the figures in its cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._key: str | None = None
        self._figure: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        href = found.get("href") or ""
        if tag == "a" and "/dashboard/touchpoints/" in href:
            self._key = href.split("/dashboard/touchpoints/", 1)[1].split("?", 1)[0]
            self.rows.setdefault(self._key, {})
        if tag == "td" and found.get("data-figure") and self._key is not None:
            self._figure, self._text = found["data-figure"], ""

    def handle_data(self, data: str) -> None:
        if self._figure is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._figure is not None and self._key is not None:
            self.rows[self._key][self._figure] = " ".join(self._text.split())
            self._figure = None
        if tag == "tr":
            self._key = None


def _number(text: str) -> float | None:
    """The first number of a cell (`1,234`, `4.4 1.3-9.1`); None for a dash."""
    found = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    return float(found.group(0).replace(",", "")) if found else None


def _of_api(row: dict[str, Any]) -> tuple[Any, ...]:
    per_1k = row["per_1k_reached"]
    return (
        int(row["human_clicks"]), int(row["scans"]), int(row["visitors"]),
        None if per_1k in (None, "") else round(float(per_1k), 1),
    )


@pytest.fixture
def window() -> dict[str, str]:
    """The dashboard's 30-day preset, as dates typed in."""
    today = utcnow().date()
    return {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}


@pytest.fixture
def analyst_page(auth: Any) -> FlaskClient:
    client: FlaskClient = auth.client("analyst")
    return client


@pytest.fixture
def ask(client: FlaskClient, analyst: dict[str, str], cli: FlaskCliRunner, app: Flask) -> Any:
    class Ask:
        def api(self, path: str, **params: str) -> Any:
            response = client.get(f"/api/v1/reports/{path}", query_string=params, headers=analyst)
            assert response.status_code == 200, response.get_data(as_text=True)
            return response.get_json()

        def api_csv(self, path: str, **params: str) -> list[dict[str, str]]:
            response = client.get(
                f"/api/v1/reports/{path}", query_string={**params, "format": "csv"},
                headers=analyst,
            )
            assert response.status_code == 200, response.get_data(as_text=True)
            return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))

        def cli(self, *args: str) -> str:
            with app.app_context():
                result = cli.invoke(args=["report", *args])
            assert result.exit_code == 0, (result.output, result.exception)
            return result.output

    return Ask()


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize(
    "filters",
    [{}, {"channel": "physical"}, {"bots": "include"}, {"stage": "awareness"},
     {"campaign": "spring-launch"}],
    ids=["all", "physical", "bots", "awareness", "campaign"],
)
def test_touchpoints_are_the_same_in_the_api_csv_cli_and_dashboard(
    ask: Any, analyst_page: FlaskClient, window: dict[str, str], filters: dict[str, str]
) -> None:
    params = {**window, **filters, "limit": "1000"}
    api = {r["touchpoint"]["key"]: _of_api(r) for r in ask.api("touchpoints", **params)["rows"]}
    assert api, "the journey gives every filter some touchpoints"
    # The API's CSV.
    assert {r["touchpoint_key"]: _of_api(r) for r in ask.api_csv("touchpoints", **params)} == api

    # The CLI, in each of its formats.
    options = [f"--{name}" for name in ("from", "to")]
    cli_args = ["touchpoints", "--limit", "1000", options[0], window["from"], options[1],
                window["to"]]
    for name, value in filters.items():
        cli_args += ["--bots"] if name == "bots" else [f"--{name}", value]
    as_json = json.loads(ask.cli(*cli_args, "--format", "json"))
    assert {r["touchpoint"]["key"]: _of_api(r) for r in as_json["rows"]} == api
    as_csv = csv.DictReader(io.StringIO(ask.cli(*cli_args, "--format", "csv")))
    assert {r["touchpoint_key"]: _of_api(r) for r in as_csv} == api
    table = ask.cli(*cli_args)
    for key, (human, scans, visitors, _) in api.items():
        line = next(line for line in table.splitlines() if line.startswith(key))
        assert re.search(rf"\b{human}\b.*\b{scans}\b.*\b{visitors}\b", line), line

    # The dashboard: its two tables together, and its CSV downloads.
    page_args = {"range": "30d", **filters}
    page = analyst_page.get("/dashboard", query_string=page_args)
    assert page.status_code == 200
    parsed = EngagementRows()
    parsed.feed(page.get_data(as_text=True))
    shown = {
        key: (
            int(_number(cells["human_clicks"]) or 0), int(_number(cells["scans"]) or 0),
            int(_number(cells["visitors"]) or 0), _number(cells["per_1k_reached"]),
        )
        for key, cells in parsed.rows.items()
        if "human_clicks" in cells
    }
    # The tables show the eight most and eight least engaged: here, every touchpoint.
    assert shown == api
    for table_name in ("most", "least"):
        download = analyst_page.get(
            "/dashboard", query_string={**page_args, "format": "csv", "table": table_name}
        )
        rows = csv.DictReader(io.StringIO(download.get_data(as_text=True)))
        assert {r["touchpoint_key"]: _of_api(r) for r in rows} == api


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize("filters", [{}, {"channel": "digital"}, {"bots": "include"}],
                         ids=["all", "digital", "bots"])
def test_visitors_by_stage_are_the_same_everywhere(
    ask: Any, analyst_page: FlaskClient, window: dict[str, str], filters: dict[str, str]
) -> None:
    def figures(rows: Any, key: str) -> dict[str, tuple[int, int, int, str]]:
        return {
            r[key] if isinstance(r[key], str) else r[key]["key"]: (
                int(r["clicks"]), int(r["scans"]), int(r["visitors"]),
                str(r["next_stage_ratio"] if r["next_stage_ratio"] is not None else ""),
            )
            for r in rows
        }

    params = {**window, **filters}
    api = figures(ask.api("stages", **params)["rows"], "stage")
    assert sum(clicks for clicks, *_ in api.values()) > 0
    assert figures(ask.api_csv("stages", **params), "stage_key") == api
    cli_args = ["stages", "--from", window["from"], "--to", window["to"]]
    cli_args += ["--channel", filters["channel"]] if "channel" in filters else []
    cli_args += ["--bots"] if "bots" in filters else []
    assert figures(json.loads(ask.cli(*cli_args, "--format", "json"))["rows"], "stage") == api
    download = analyst_page.get(
        "/dashboard",
        query_string={"range": "30d", **filters, "format": "csv", "table": "stages"},
    )
    assert figures(list(csv.DictReader(io.StringIO(download.get_data(as_text=True)))),
                   "stage_key") == api


@pytest.mark.usefixtures("journey")
def test_a_touchpoints_page_says_what_its_report_row_and_the_api_say(
    ask: Any, analyst_page: FlaskClient, window: dict[str, str]
) -> None:
    row = next(
        r for r in ask.api("touchpoints", **window)["rows"]
        if r["touchpoint"]["key"] == "store-flyer"
    )
    detail = ask.api("touchpoints/store-flyer", **window)
    assert {k: detail["figures"][k] for k in row} == row
    links = ask.api_csv("touchpoints/store-flyer", **window, table="links")
    assert sum(int(r["human_clicks"]) for r in links) == row["human_clicks"]
    page = analyst_page.get("/dashboard/touchpoints/store-flyer", query_string={"range": "30d"})
    text = " ".join(page.get_data(as_text=True).split())
    for figure in ("human_clicks", "bot_clicks", "scans", "visitors"):
        # Its row of the figures table: the label, then this window's value.
        found = re.search(
            rf'<tr data-figure="{figure}">.*?<td class="num current">([^<]*)</td>', text
        )
        assert found is not None, figure
        assert _number(found.group(1)) == row[figure], figure
