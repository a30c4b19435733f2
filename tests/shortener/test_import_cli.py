"""`touchlink import links|touchpoints`: our own CSV columns and the exports of Bitly, Shlink and
YOURLS, through Flask's CLI runner on the real app: rows → database → redirects, and the results
file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from shortener.models import Link, Touchpoint

# What Bitly's "Export" of links looks like: the bit.ly link, the branded back-half where one was
# made, the destination, and columns we leave aside.
BITLY = """Title,Link,Custom Link,Destination URL,Date Created,Tags,Engagements
"Spring sale, Lyon",https://bit.ly/3xYz9Ab,https://go.brand.example/lyon-spring,\
https://shop.example.com/lyon?campaign=spring,2025-03-01 10:12:00,stores|spring,1204
Paris store,https://bit.ly/4aBcDeF,,https://shop.example.com/paris,2025-03-02 09:00:00,,87
Broken row,https://bit.ly/4zzzzzz,,not-a-url,2025-03-02 09:00:00,,0
"""
# Shlink's web client export.
SHLINK = """createdAt,domain,shortCode,shortUrl,longUrl,title,tags,visits
2025-01-10T10:00:00+00:00,s.brand.example,nice-01,https://s.brand.example/nice-01,\
https://shop.example.com/nice,Nice store,stores|south,32
2025-01-11T10:00:00+00:00,,brest,https://s.brand.example/brest,https://shop.example.com/brest,,,0
2025-01-12T10:00:00+00:00,,metrics,https://s.brand.example/metrics,https://shop.example.com/m,,,0
"""
# The YOURLS Import/Export plugin's CSV, and a dump of the yourls_url table.
YOURLS_PLUGIN = """source,target,hits
/flyer-lille/,https://shop.example.com/lille,12
/flyer-metz/,https://shop.example.com/metz,0
"""
YOURLS_TABLE = """keyword,url,title,timestamp,ip,clicks
tours,https://shop.example.com/tours,Tours store,2024-11-02 08:00:00,192.0.2.1,5
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _results(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _links(session: Session) -> dict[str, Link]:
    session.expire_all()
    return {link.slug: link for link in session.scalars(select(Link))}


@pytest.fixture
def store(client: FlaskClient, marketer: dict[str, str], touchpoint: dict[str, Any]) -> str:
    response = client.post(
        "/api/v1/touchpoints", headers=marketer,
        json={"key": "migrated", "name": "Migrated links", "channel": "digital"},
    )
    assert response.status_code == 201
    return "migrated"


def _run(cli: FlaskCliRunner, *args: str) -> Result:
    return cli.invoke(args=["import", *args])


def test_our_own_csv_is_imported_with_a_summary_and_a_results_file(
    cli: FlaskCliRunner, client: FlaskClient, session: Session, touchpoint: dict[str, Any],
    tmp_path: Path,
) -> None:
    source = _write(tmp_path, "links.csv", (
        "url,touchpoint,stage,slug,campaign\n"
        "https://shop.example.com/a,store-flyer,awareness,cli-a,rollout\n"
        "https://shop.example.com/b,store-flyer,nowhen,cli-b,\n"
        "https://shop.example.com/c,store-flyer,decision,,\n"
    ))
    output = tmp_path / "results.csv"

    result = _run(cli, "links", str(source), "-o", str(output))

    assert result.exit_code == 1, result.output  # a row was refused
    assert "Imported 2 of 3 links; 1 refused." in result.stdout
    assert "row 2: unknown_reference: stage: no stage with key 'nowhen'" in result.stderr
    assert "Importing 3 links" in result.stderr  # the progress bar's label
    rows = _results(output)
    assert [r["row"] for r in rows] == ["1", "2", "3"]
    assert [r["status"] for r in rows] == ["created", "error", "created"]
    assert rows[0]["short_url"] == "http://go.test/cli-a"
    assert rows[1]["slug"] == "cli-b" and rows[1]["error_code"] == "unknown_reference"
    random = rows[2]["slug"]
    assert rows[2]["short_url"] == f"http://go.test/{random}"
    stored = _links(session)
    assert set(stored) == {"cli-a", random}
    assert stored["cli-a"].campaign == "rollout"
    assert client.get("/cli-a").status_code == 302


def test_atomic_imports_nothing_when_a_row_is_bad(
    cli: FlaskCliRunner, session: Session, touchpoint: dict[str, Any], tmp_path: Path,
) -> None:
    source = _write(tmp_path, "links.csv", (
        "url,slug\nhttps://shop.example.com/a,at-a\nftp://nope,at-b\n"
    ))

    result = _run(cli, "links", str(source), "--touchpoint", "store-flyer", "--stage",
                  "awareness", "--atomic")

    assert result.exit_code == 1
    assert "Nothing imported: 1 of 2 rows are invalid (--atomic)." in result.stdout
    assert _links(session) == {}


def test_a_refused_file_ends_the_command_with_the_reason(
    cli: FlaskCliRunner, touchpoint: dict[str, Any], tmp_path: Path,
) -> None:
    source = _write(tmp_path, "links.csv", "url,touchpoint,stage,colour\nx,y,z,red\n")

    result = _run(cli, "links", str(source))

    assert result.exit_code == 1
    assert "unknown column colour" in result.output
    assert "Traceback" not in result.output


def test_a_bitly_export_keeps_its_back_halves_and_long_urls(
    cli: FlaskCliRunner, client: FlaskClient, session: Session, store: str, tmp_path: Path,
) -> None:
    source = _write(tmp_path, "bitly.csv", BITLY)
    output = tmp_path / "results.csv"

    result = _run(cli, "links", str(source), "--from", "bitly", "--touchpoint", store,
                  "--stage", "awareness", "-o", str(output))

    assert "Imported 2 of 3 links; 1 refused." in result.stdout
    stored = _links(session)
    assert set(stored) == {"lyon-spring", "4aBcDeF"}
    lyon = stored["lyon-spring"]
    assert lyon.destination == "https://shop.example.com/lyon?campaign=spring"
    assert lyon.title == "Spring sale, Lyon"
    assert (lyon.touchpoint.key, lyon.stage.key, lyon.domain) == (store, "awareness", "go.test")
    rows = _results(output)
    assert rows[0]["source"] == "https://go.brand.example/lyon-spring"
    assert rows[2]["error_code"] == "invalid_url"
    location = client.get("/4aBcDeF").headers["Location"]
    assert location.startswith("https://shop.example.com/paris?utm_source=migrated")


def test_a_shlink_export_keeps_its_short_codes(
    cli: FlaskCliRunner, session: Session, store: str, tmp_path: Path,
) -> None:
    source = _write(tmp_path, "short_urls.csv", SHLINK)

    result = _run(cli, "links", str(source), "--from", "shlink", "--touchpoint", store,
                  "--stage", "consideration")

    assert "Imported 2 of 3 links; 1 refused." in result.stdout
    assert "row 3: invalid_slug" in result.stderr  # "metrics" is one of our own paths
    stored = _links(session)
    assert set(stored) == {"nice-01", "brest"}
    assert stored["nice-01"].title == "Nice store"
    assert stored["brest"].destination == "https://shop.example.com/brest"


@pytest.mark.parametrize(("text", "slugs"), [(YOURLS_PLUGIN, {"flyer-lille", "flyer-metz"}),
                                              (YOURLS_TABLE, {"tours"})],
                         ids=["import-export-plugin", "table-dump"])
def test_a_yourls_export_keeps_its_keywords(
    cli: FlaskCliRunner, session: Session, store: str, tmp_path: Path, text: str,
    slugs: set[str],
) -> None:
    source = _write(tmp_path, "yourls.csv", text)

    result = _run(cli, "links", str(source), "--from", "yourls", "--touchpoint", store,
                  "--stage", "awareness")

    assert result.exit_code == 0, result.output
    assert set(_links(session)) == slugs


def test_touchpoint_and_stage_columns_of_the_file_win_over_the_options(
    cli: FlaskCliRunner, session: Session, store: str, tmp_path: Path,
) -> None:
    text = ("shortCode,longUrl,touchpoint,stage\n"
            "per-row,https://shop.example.com/r,store-flyer,decision\n"
            "default,https://shop.example.com/d,,\n")
    source = _write(tmp_path, "shlink.csv", text)

    result = _run(cli, "links", str(source), "--from", "shlink", "--touchpoint", store,
                  "--stage", "awareness")

    assert result.exit_code == 0, result.output
    stored = _links(session)
    assert (stored["per-row"].touchpoint.key, stored["per-row"].stage.key) == (
        "store-flyer", "decision")
    assert (stored["default"].touchpoint.key, stored["default"].stage.key) == (
        store, "awareness")


def test_an_export_without_its_columns_is_refused(
    cli: FlaskCliRunner, tmp_path: Path,
) -> None:
    source = _write(tmp_path, "other.csv", "a,b\n1,2\n")

    result = _run(cli, "links", str(source), "--from", "bitly")

    assert result.exit_code == 1
    assert "does not look like a Bitly export" in result.output


def test_touchpoints_are_imported_with_a_results_file(
    cli: FlaskCliRunner, session: Session, tmp_path: Path,
) -> None:
    source = _write(tmp_path, "stores.csv", "".join(
        ["key,name,channel,exposure\n"]
        + [f"store-{i:02d},Store {i},physical,1000\n" for i in range(50)]
    ))
    output = tmp_path / "results.csv"

    result = _run(cli, "touchpoints", str(source), "-o", str(output))

    assert result.exit_code == 0, result.output
    assert "Imported 50 of 50 touchpoints; 0 refused." in result.stdout
    session.expire_all()
    stored = {tp.key: tp for tp in session.scalars(select(Touchpoint))}
    assert len(stored) == 50 and stored["store-07"].exposure == 1000
    assert {r["status"] for r in _results(output)} == {"created"}
