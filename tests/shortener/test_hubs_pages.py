"""The hub pages and commands: a marketer makes a hub on the form, adds, edits, moves and removes
its buttons with plain forms (the customers' page follows each change), refusals shown next to
their field; analysts are kept out; and `touchlink hubs create|add-button|list|show`."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from shortener.models import Hub, Link
from tests.user_agents import IPHONE

_HREF = re.compile(r'<a class="button" href="([^"]+)">([^<]*)</a>')


@pytest.fixture
def marketer_client(auth: Any, touchpoint: dict[str, Any]) -> FlaskClient:
    client: FlaskClient = auth.client("marketer")
    return client


def stored_hub(session: Session) -> Hub:
    session.expire_all()
    return session.scalars(select(Hub)).one()


def shown_buttons(app: Flask, hub: Hub) -> list[str]:
    """The labels of the buttons on the customers' page, in order."""
    page = app.test_client().get(f"/{hub.link.slug}", headers={"User-Agent": IPHONE})
    assert page.status_code == 200
    return [label for _, label in _HREF.findall(page.get_data(as_text=True))]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_marketer_makes_a_hub_and_arranges_its_buttons_on_the_page(
    marketer_client: FlaskClient, pages: Any, app: Flask, session: Session
) -> None:
    made = pages.post_form(
        marketer_client, "/links/hubs/new",
        {"touchpoint": "store-flyer", "title": "Flyer hub", "description": "", "stage": "",
         "slug": "flyerhub", "avatar": (io.BytesIO(png()), "me.png")},
    )
    assert made.status_code == 302, pages.text(made)[:2000]
    hub = stored_hub(session)
    edit = urlsplit(made.headers["Location"]).path
    assert edit == f"/links/hubs/{hub.id}"
    assert hub.link.slug == "flyerhub" and hub.avatar_type == "image/png"

    for label, stage in (("Shop", "decision"), ("Story", "awareness"), ("Help", "support")):
        added = pages.post_form(
            marketer_client, f"{edit}/buttons",
            {"label": label, "url": f"https://shop.example.com/{label.lower()}", "stage": stage},
            form_page=edit,
        )
        assert added.status_code == 302, pages.text(added)[:2000]
    hub = stored_hub(session)
    shop, story, help_ = hub.buttons
    shop_id, shop_link, story_id, help_id = shop.id, shop.link_id, story.id, help_.id
    assert shown_buttons(app, hub) == ["Shop", "Story", "Help"]

    moved = pages.post_form(
        marketer_client, f"{edit}/buttons/{help_id}/move", {"direction": "up"}, form_page=edit
    )
    saved = pages.post_form(
        marketer_client, f"{edit}/buttons/{story_id}",
        {"label": "Our story", "url": "https://shop.example.com/story", "stage": "awareness"},
        form_page=edit,
    )
    removed = pages.post_form(
        marketer_client, f"{edit}/buttons/{shop_id}/remove", {}, form_page=edit
    )

    assert [r.status_code for r in (moved, saved, removed)] == [302, 302, 302]
    hub = stored_hub(session)
    assert [(b.label, b.link.stage.key) for b in hub.buttons] == [
        ("Help", "support"), ("Our story", "awareness")
    ]
    assert shown_buttons(app, hub) == ["Help", "Our story"]
    assert session.get(Link, shop_link).archived is True  # type: ignore[union-attr]
    page = pages.text(marketer_client.get(edit))
    assert "Move up" in page and "Move down" in page and "<script" not in page.split("</head>")[1]
    assert f"/links/hubs/{hub.id}/avatar/{hub.avatar_digest}.png" in page


def test_a_refused_button_is_shown_again_with_the_message_next_to_its_field(
    marketer_client: FlaskClient, pages: Any, session: Session
) -> None:
    made = pages.post_form(
        marketer_client, "/links/hubs/new", {"touchpoint": "store-flyer", "title": "Hub"}
    )
    edit = urlsplit(made.headers["Location"]).path

    refused = pages.post_form(
        marketer_client, f"{edit}/buttons",
        {"label": "Bad", "url": "javascript:alert(1)", "stage": "awareness"}, form_page=edit,
    )

    assert refused.status_code == 422
    assert "http://" in pages.field_error(refused, "url")
    assert 'value="javascript:alert(1)"' in pages.text(refused)  # what was typed, kept
    assert stored_hub(session).buttons == []


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"touchpoint": "store-flyer", "title": ""}, "title", "blank"),
        ({"touchpoint": "", "title": "Hub"}, "touchpoint", "blank"),
        ({"touchpoint": "store-flyer", "title": "Hub",
          "avatar": b"%PDF-1.4 not a picture"}, "avatar", "not a PNG"),
    ],
)
def test_a_refused_hub_form_says_what_is_wrong(
    marketer_client: FlaskClient, pages: Any, form: dict[str, Any], field: str, words: str
) -> None:
    # A file as a browser sends it; made here, since a parameter is shared by both databases.
    sent = {k: (io.BytesIO(v), "upload") if isinstance(v, bytes) else v for k, v in form.items()}

    refused = pages.post_form(marketer_client, "/links/hubs/new", sent)

    assert refused.status_code == 422
    assert words in pages.field_error(refused, field)


def test_analysts_cannot_open_the_hub_pages(auth: Any) -> None:
    analyst = auth.client("analyst")

    assert analyst.get("/links/hubs").status_code == 403
    assert analyst.get("/links/hubs/new").status_code == 403


def test_the_hub_list_is_in_the_navigation_and_fits_a_phone(
    marketer_client: FlaskClient, pages: Any
) -> None:
    pages.post_form(marketer_client, "/links/hubs/new", {"touchpoint": "store-flyer",
                                                          "title": "Flyer hub"})

    listed = pages.text(marketer_client.get("/links/hubs"))

    assert 'href="/links/hubs" aria-current="page">Hubs</a>' in listed
    assert "Flyer hub" in listed and 'name="viewport" content="width=device-width' in listed


# --- commands ------------------------------------------------------------------------------------


def _ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_hubs_are_made_and_shown_on_the_command_line(
    cli: FlaskCliRunner, touchpoint: dict[str, Any], app: Flask, session: Session,
    tmp_path: Path,
) -> None:
    avatar = tmp_path / "me.png"
    avatar.write_bytes(png())

    made = _ok(cli.invoke(args=["hubs", "create", "store-flyer", "--title", "Flyer hub",
                                "--slug", "flyer-hub", "--avatar", str(avatar)]))
    hub_id = made.split()[0]
    added = _ok(cli.invoke(args=["hubs", "add-button", hub_id, "--label", "Shop",
                                 "--url", "https://shop.example.com/", "--stage", "decision"]))
    listed = _ok(cli.invoke(args=["hubs", "list"]))
    shown = _ok(cli.invoke(args=["hubs", "show", hub_id]))
    bad = cli.invoke(args=["hubs", "add-button", hub_id, "--label", "x", "--url", "nope"])

    assert made.split()[1] == "http://go.test/flyer-hub"
    assert added.strip().startswith("http://go.test/")
    assert "Flyer hub" in listed and " 1 buttons" in listed
    assert "Shop  [decision]" in shown and "→ https://shop.example.com/" in shown
    assert bad.exit_code != 0 and "url:" in bad.output and "Traceback" not in bad.output
    hub = stored_hub(session)
    assert shown_buttons(app, hub) == ["Shop"] and hub.avatar_type == "image/png"
