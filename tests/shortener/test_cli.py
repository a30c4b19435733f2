"""The `touchlink` commands of the link side, run through Flask's CLI runner on the real app."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.runtime import Runtime
from shortener.demo import DEMO
from shortener.models import ApiKey, Link, Stage, Touchpoint
from shortener.unit_of_work import transaction

Bearer = Callable[[str], dict[str, str]]


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _refused(result: Result, *words: str) -> str:
    """The message of a command that failed cleanly: non-zero exit, no traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output
    return result.output


def _create_key(cli: FlaskCliRunner, role: str = "marketer") -> str:
    result = _ok(cli.invoke(args=["keys", "create", "--name", "CI bot", "--role", role]))
    [raw] = result.stdout.split()
    return raw


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- keys ---------------------------------------------------------------------------------------


def test_a_created_key_is_printed_once_and_authorises_its_role(
    cli: FlaskCliRunner, client: FlaskClient, session: Session, bearer: Bearer
) -> None:
    raw = _create_key(cli, "marketer")

    response = client.post(
        "/api/v1/touchpoints",
        json={"key": "newsletter", "name": "Newsletter", "channel": "digital"},
        headers=bearer(raw),
    )
    assert response.status_code == 201
    stage = client.post("/api/v1/stages", json={"key": "loyalty"}, headers=bearer(raw))
    assert stage.status_code == 403
    row = session.scalars(select(ApiKey)).one()
    assert (row.name, row.role) == ("CI bot", "marketer")
    assert raw not in (row.key_hash, row.prefix)


def test_the_key_list_shows_prefixes_but_never_a_whole_key(cli: FlaskCliRunner) -> None:
    raws = [_create_key(cli, role) for role in ("admin", "analyst")]

    listing = _ok(cli.invoke(args=["keys", "list"])).output

    for raw in raws:
        assert raw[:10] in listing
        assert raw not in listing
        assert raw[:11] not in listing
    assert "admin" in listing and "analyst" in listing


@pytest.mark.parametrize("by", ["prefix", "id"])
def test_a_revoked_key_no_longer_authorises(
    cli: FlaskCliRunner, client: FlaskClient, session: Session, bearer: Bearer, by: str
) -> None:
    raw = _create_key(cli, "analyst")
    assert client.get("/api/v1/links", headers=bearer(raw)).status_code == 200
    key_id = session.scalars(select(ApiKey.id)).one()

    result = _ok(cli.invoke(args=["keys", "revoke", raw[:10] if by == "prefix" else str(key_id)]))

    assert "Revoked" in result.output
    assert client.get("/api/v1/links", headers=bearer(raw)).status_code == 401
    assert "revoked" in _ok(cli.invoke(args=["keys", "list"])).output


@pytest.mark.parametrize("key", ["tl_nothing", "424242", "99999999999999999999", "\u00b2"])
def test_revoking_an_unknown_key_fails_clearly(cli: FlaskCliRunner, key: str) -> None:
    _create_key(cli)

    _refused(cli.invoke(args=["keys", "revoke", key]), "No API key")


def test_a_prefix_shared_by_two_keys_revokes_neither(
    cli: FlaskCliRunner, rt: Runtime, session: Session
) -> None:
    raws = [_create_key(cli), _create_key(cli)]
    with transaction(rt.sessions) as writer:
        for key in writer.scalars(select(ApiKey)):
            key.prefix = "tl_shared1"

    _refused(cli.invoke(args=["keys", "revoke", "tl_shared1"]), "id")

    assert [key.revoked_at for key in session.scalars(select(ApiKey))] == [None, None]
    assert len(set(raws)) == 2


@pytest.mark.parametrize("name", ["   ", "x" * 201, "bell\x07"])
def test_a_key_needs_a_sensible_name(cli: FlaskCliRunner, session: Session, name: str) -> None:
    result = cli.invoke(args=["keys", "create", "--name", name, "--role", "analyst"])

    _refused(result, "name")
    assert _count(session, ApiKey) == 0


def test_a_key_needs_a_known_role(cli: FlaskCliRunner, session: Session) -> None:
    result = cli.invoke(args=["keys", "create", "--name", "x", "--role", "root"])

    _refused(result, "root")
    assert _count(session, ApiKey) == 0


# --- links --------------------------------------------------------------------------------------


def test_a_link_created_on_the_command_line_redirects(
    cli: FlaskCliRunner, client: FlaskClient, touchpoint: dict[str, Any], session: Session
) -> None:
    result = _ok(cli.invoke(args=[
        "links", "create", "https://shop.example.com/winter",
        "--touchpoint", "store-flyer", "--stage", "decision",
        "--slug", "winter", "--campaign", "winter-sale",
    ]))

    assert result.stdout.strip() == "http://go.test/winter"
    response = client.get("/winter")
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "https://shop.example.com/winter"
        "?utm_source=store-flyer&utm_medium=physical&utm_campaign=winter-sale"
    )
    row = session.scalars(select(Link)).one()
    assert (row.slug, row.stage.key, row.campaign) == ("winter", "decision", "winter-sale")


def test_a_link_created_without_a_slug_gets_a_random_one(
    cli: FlaskCliRunner, client: FlaskClient, touchpoint: dict[str, Any]
) -> None:
    result = _ok(cli.invoke(args=[
        "links", "create", "https://example.com/", "--touchpoint", "store-flyer",
        "--stage", "awareness", "--status", "301", "--no-utm",
    ]))

    slug = result.stdout.strip().removeprefix("http://go.test/")
    assert len(slug) >= 7
    response = client.get(f"/{slug}")
    assert (response.status_code, response.headers["Location"]) == (301, "https://example.com/")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["javascript:alert(1)"], ["url", "http"]),
        (["https://go.test/loop"], ["url", "shortener"]),
        (["https://example.com/", "--slug", "api"], ["slug", "reserved"]),
        (["https://example.com/", "--slug", "spring"], ["spring", "already used"]),
        (["https://example.com/", "--touchpoint", "nobody"], ["touchpoint", "nobody"]),
        (["https://example.com/", "--stage", "nowhere"], ["stage", "nowhere"]),
        (["https://example.com/", "--campaign", "a\tb"], ["campaign"]),
    ],
)
def test_a_bad_link_fails_with_a_clear_message_and_no_traceback(
    cli: FlaskCliRunner,
    link: dict[str, Any],
    session: Session,
    args: list[str],
    words: list[str],
) -> None:
    options = {"--touchpoint": "store-flyer", "--stage": "awareness"}
    for name, value in options.items():
        if name not in args:
            args = [*args, name, value]

    _refused(cli.invoke(args=["links", "create", *args]), *words)
    assert _count(session, Link) == 1


def test_links_are_listed(cli: FlaskCliRunner, link: dict[str, Any]) -> None:
    listing = _ok(cli.invoke(args=["links", "list"])).output

    assert "http://go.test/spring" in listing
    assert "store-flyer" in listing and "awareness" in listing


def test_a_link_is_shown_with_everything_it_does(
    cli: FlaskCliRunner, link: dict[str, Any]
) -> None:
    shown = _ok(cli.invoke(args=["links", "show", "spring"])).output

    lines = dict(line.split(":", 1) for line in shown.splitlines())
    assert {name: value.strip() for name, value in lines.items()} == {
        "short URL": "http://go.test/spring",
        "id": str(link["id"]),
        "state": "live",
        "destination": "https://shop.example.com/spring?ref=flyer",
        "touchpoint": "store-flyer",
        "stage": "awareness",
        "campaign": "spring-launch",
        "title": "-",
        "redirect": "302",
        "utm": "on",
        "conversions": "not tracked",
        "survey": "none",
        "goes live": "at once",
        "expires at": "never",
        "fallback": "-",
        "created at": link["created_at"],
        "QR code": "http://go.test/spring?qr=1",
    }


def test_an_edit_on_the_command_line_changes_only_what_it_names_and_redirects_at_once(
    cli: FlaskCliRunner, client: FlaskClient, link: dict[str, Any], session: Session
) -> None:
    assert client.get("/spring").status_code == 302  # cached as it was

    shown = _ok(cli.invoke(args=[
        "links", "edit", "spring", "--url", "https://shop.example.com/summer",
        "--title", "Summer flyer", "--campaign", "", "--expires-at", "2099-06-30T18:00",
        "--no-utm", "--track-conversions",
    ])).output

    assert "destination:  https://shop.example.com/summer" in shown
    assert "campaign:     -" in shown
    assert "expires at:   2099-06-30T18:00:00+00:00" in shown
    row = session.scalars(select(Link)).one()
    session.refresh(row)
    assert (row.destination, row.title, row.campaign, row.utm, row.track_conversions) == (
        "https://shop.example.com/summer", "Summer flyer", None, False, True
    )
    assert (row.stage.key, row.slug, row.redirect_status) == ("awareness", "spring", 302)
    response = client.get("/spring")
    assert response.headers["Location"].startswith("https://shop.example.com/summer?tl_click=")


def test_an_edit_can_move_the_slug_the_stage_and_the_status(
    cli: FlaskCliRunner, client: FlaskClient, link: dict[str, Any]
) -> None:
    _ok(cli.invoke(args=[
        "links", "edit", "spring", "--slug", "spring-26", "--stage", "decision", "--status", "301",
    ]))

    moved = client.get("/spring-26")
    assert moved.status_code == 301
    assert client.get("/spring").headers["Location"] == moved.headers["Location"]  # printed
    assert _ok(cli.invoke(args=["links", "show", "spring-26"])).output.count("decision") == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["nobody", "--title", "x"], ["No link with slug 'nobody'"]),
        (["spring"], ["nothing to change"]),
        (["spring", "--url", "javascript:alert(1)"], ["url"]),
        (["spring", "--stage", "nowhere"], ["stage", "nowhere"]),
        (["spring", "--touchpoint", "ghost"], ["touchpoint", "ghost"]),
        (["spring", "--slug", "later"], ["later", "already used"]),
        (["spring", "--slug", "api"], ["slug", "reserved"]),
        (["spring", "--expires-at", "tomorrow"], ["expires_at", "ISO 8601"]),
        (["spring", "--title", "a\tb"], ["title", "control characters"]),
        (["spring", "--status", "303"], ["303"]),
    ],
)
def test_a_bad_edit_fails_clearly_and_changes_nothing(
    cli: FlaskCliRunner, link: dict[str, Any], new_link: Any, session: Session,
    args: list[str], words: list[str],
) -> None:
    new_link(slug="later")

    _refused(cli.invoke(args=["links", "edit", *args]), *words)
    row = session.scalars(select(Link).where(Link.slug == "spring")).one()
    session.refresh(row)
    assert (row.destination, row.title, row.stage.key) == (
        "https://shop.example.com/spring?ref=flyer", None, "awareness"
    )


def test_an_archived_link_is_gone_until_restored(
    cli: FlaskCliRunner, client: FlaskClient, link: dict[str, Any]
) -> None:
    assert client.get("/spring").status_code == 302

    archived = _ok(cli.invoke(args=["links", "archive", "spring"])).output

    assert archived.strip() == "Archived http://go.test/spring: it answers 410 Gone."
    assert client.get("/spring").status_code == 410
    assert "state:        archived" in _ok(cli.invoke(args=["links", "show", "spring"])).output
    restored = _ok(cli.invoke(args=["links", "restore", "spring"])).output
    assert restored.strip() == "Restored http://go.test/spring: it redirects again."
    assert client.get("/spring").status_code == 302


@pytest.mark.parametrize("command", ["show", "archive", "restore"])
def test_an_unknown_slug_fails_clearly(cli: FlaskCliRunner, command: str) -> None:
    _refused(cli.invoke(args=["links", command, "nobody"]), "No link with slug 'nobody'")


# --- qr -----------------------------------------------------------------------------------------


def test_the_qr_command_writes_a_png_that_reads_as_the_scan_url(
    cli: FlaskCliRunner, link: dict[str, Any], tmp_path: Path
) -> None:
    output = tmp_path / "spring.png"

    _ok(cli.invoke(args=["qr", "spring", "-o", str(output), "--size", "400"]))

    image = Image.open(output)
    assert image.format == "PNG"
    assert image.size == (400, 400)
    assert [code.text for code in zxingcpp.read_barcodes(image)] == ["http://go.test/spring?qr=1"]


def test_the_qr_command_writes_an_svg(
    cli: FlaskCliRunner, link: dict[str, Any], tmp_path: Path
) -> None:
    output = tmp_path / "spring.SVG"

    _ok(cli.invoke(args=["qr", "spring", "-o", str(output)]))

    root = ET.parse(output).getroot()  # noqa: S314 (our own output)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_the_qr_command_puts_a_logo_in_the_centre_and_a_caption_under_a_code_that_reads(
    cli: FlaskCliRunner, link: dict[str, Any], tmp_path: Path
) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 10">'
                    '<rect width="20" height="10" fill="#3b5bdb"/></svg>')
    output = tmp_path / "spring.png"

    _ok(cli.invoke(args=["qr", "spring", "-o", str(output), "--size", "400",
                         "--caption", "Scan for 10 % off", "--logo", str(logo)]))

    image = Image.open(output).convert("RGB")
    assert image.width == 400 and image.height > 400  # the caption's band under the code
    assert (59, 91, 219) in {image.getpixel((x, 200)) for x in range(150, 250)}  # the logo
    assert [code.text for code in zxingcpp.read_barcodes(image)] == ["http://go.test/spring?qr=1"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["spring", "-o", "{dir}/spring.png", "--logo", "{dir}/../tl-no-such-logo.png"],
         ["logo"]),
        (["spring", "-o", "{dir}/spring.txt"], [".svg", ".png"]),
        (["spring", "-o", "{dir}/spring"], [".svg", ".png"]),
        (["nothing", "-o", "{dir}/nothing.png"], ["nothing"]),
        (["spring", "-o", "{dir}/spring.png", "--ecc", "Z"], ["ecc"]),
        (["spring", "-o", "{dir}/spring.png", "--fg", "nonsense"], ["fg"]),
        (["spring", "-o", "{dir}/missing/spring.png"], ["missing"]),
    ],
)
def test_the_qr_command_fails_clearly_and_writes_nothing(
    cli: FlaskCliRunner, link: dict[str, Any], tmp_path: Path, args: list[str], words: list[str]
) -> None:
    result = cli.invoke(args=["qr", *(arg.format(dir=tmp_path) for arg in args)])

    _refused(result, *words)
    assert list(tmp_path.iterdir()) == []


# --- touchpoints and stages ---------------------------------------------------------------------


def test_touchpoints_are_created_and_listed(cli: FlaskCliRunner, session: Session) -> None:
    _ok(cli.invoke(args=["touchpoints", "create", "trade-fair", "--name", "Trade fair stand",
                         "--channel", "physical", "--kind", "event", "--exposure", "1200"]))

    listing = _ok(cli.invoke(args=["touchpoints", "list"])).output

    assert "trade-fair" in listing and "Trade fair stand" in listing and "physical" in listing
    row = session.scalars(select(Touchpoint)).one()
    assert (row.key, row.kind, row.exposure) == ("trade-fair", "event", 1200)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["store-flyer", "--name", "Again", "--channel", "physical"], ["store-flyer", "exists"]),
        (["Bad Key", "--name", "x", "--channel", "physical"], ["key"]),
        (["fresh", "--name", "x", "--channel", "physical", "--exposure", "0"], ["exposure"]),
        (["fresh", "--name", "x", "--channel", "email"], ["email"]),
    ],
)
def test_a_bad_touchpoint_fails_clearly(
    cli: FlaskCliRunner,
    touchpoint: dict[str, Any],
    session: Session,
    args: list[str],
    words: list[str],
) -> None:
    _refused(cli.invoke(args=["touchpoints", "create", *args]), *words)
    assert _count(session, Touchpoint) == 1


def test_stages_are_listed_in_journey_order(cli: FlaskCliRunner) -> None:
    lines = _ok(cli.invoke(args=["stages", "list"])).output.splitlines()

    assert [line.split()[1] for line in lines] == [
        "awareness", "consideration", "decision", "post-purchase", "support"
    ]


# --- init ---------------------------------------------------------------------------------------


def _init(app: Flask, cli: FlaskCliRunner, *args: str) -> Result:
    # `touchlink` (a FlaskGroup) pushes an app context for every command; the runner does not.
    with app.app_context():
        return _ok(cli.invoke(args=["init", *args]))


def test_init_with_demo_seeds_a_workspace_once(
    app: Flask, cli: FlaskCliRunner, client: FlaskClient, session: Session, bearer: Bearer
) -> None:
    _init(app, cli, "--demo")
    touchpoints, links = _count(session, Touchpoint), _count(session, Link)

    _init(app, cli, "--demo")

    assert touchpoints == len(DEMO) == 12
    assert links == sum(len(entry[-1]) for entry in DEMO) >= 12
    assert (_count(session, Touchpoint), _count(session, Link)) == (touchpoints, links)
    assert client.get("/flyer-paris").status_code == 302
    analyst = _create_key(cli, "analyst")
    listed = client.get("/api/v1/links?limit=200", headers=bearer(analyst)).get_json()["items"]
    assert len(listed) == links
    assert {item["domain"] for item in listed} == {"go.test"}


def test_init_adds_the_missing_stages_of_a_preset(
    app: Flask, cli: FlaskCliRunner, session: Session
) -> None:
    _init(app, cli, "--stages", "three-phase")
    _init(app, cli, "--stages", "three-phase")

    keys = [stage.key for stage in session.scalars(select(Stage).order_by(Stage.position))]
    assert keys == [
        "awareness", "consideration", "decision", "post-purchase", "support",
        "before-purchase", "during-purchase", "after-purchase",
    ]
