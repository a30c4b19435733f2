"""The weekly digest through the real path: people opt in on their account page, clicks are
stored at times the test chooses, `touchlink digest --send` queues and sends the mail to a real
local SMTP server, and its figures are the ones the test sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from analytics.models import OutboxMail
from analytics.runtime import runtime
from shortener.db import utcnow
from tests.analytics.smtp import Inbox, free_port
from tests.faults import wait_until
from tests.user_agents import ANDROID, IPHONE

# Human clicks by touchpoint: this week (the last seven whole days), and the week before.
WEEKS = {"store-flyer": (30, 20), "insta-bio": (5, 2), "packaging": (0, 0)}


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def app(make_app: Any, port: int) -> Flask:
    made: Flask = make_app(smtp_host="127.0.0.1", smtp_port=port,
                           smtp_from="touchlink@go.test", smtp_starttls=False)
    return made


@pytest.fixture
def inbox(port: int) -> Iterator[Inbox]:
    received = Inbox()
    server = Controller(received, hostname="127.0.0.1", port=port)
    server.start()
    yield received
    server.stop()


@pytest.fixture
def week(shop: Any, link: dict[str, Any], ingest: Any) -> None:
    """WEEKS' clicks, at noon of days of each week, each from a visitor of its own."""
    shop.touchpoint("insta-bio", "digital")
    # Made before the weeks began: a touchpoint made since has no place in them, clicks aside.
    shop.touchpoint("packaging", "physical", created_at=utcnow() - timedelta(days=30))
    shop.link("bio", "insta-bio", "awareness")
    shop.link("box", "packaging", "post-purchase")
    today = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    slugs = {"store-flyer": "spring", "insta-bio": "bio", "packaging": "box"}
    clicks = []
    for key, counts in WEEKS.items():
        for week_back, count in enumerate(counts):
            for i in range(count):
                at = today - timedelta(days=1 + 7 * week_back + i % 7)
                clicks.append(ingest.make(slugs[key], at, ip=f"198.51.{week_back}.{i + 1}",
                                          agent=IPHONE if i % 2 else ANDROID))
    assert ingest.raw(clicks) == len(clicks)


def opt_in(client: FlaskClient, pages: Any, on: bool) -> None:
    form = {"weekly_digest": "on"} if on else {}
    response = pages.post_form(client, "/account", form)
    assert response.status_code == 303


def text_and_html(envelope: Any) -> tuple[str, str]:
    message: Message = message_from_bytes(envelope.content)
    assert message.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode()
             for part in message.walk() if not part.is_multipart()}
    return parts["text/plain"], parts["text/html"]


@pytest.mark.usefixtures("week")
def test_each_subscriber_gets_the_week_once_with_the_figures_sent(
    app: Flask, auth: Any, pages: Any, cli: Any, inbox: Inbox
) -> None:
    auth.add_user("ana@example.com", "analyst")
    auth.add_user("ben@example.com", "marketer")
    auth.add_user("cleo@example.com", "admin")
    for email, on in (("ana@example.com", True), ("ben@example.com", False),
                      ("cleo@example.com", True)):
        client = app.test_client()
        auth.sign_in(client, email)
        opt_in(client, pages, on)

    sent = cli.invoke(args=["digest", "--send"])

    assert sent.exit_code == 0, sent.output
    assert "Digest queued for 2 users: ana@example.com, cleo@example.com." in sent.output
    wait_until(lambda: len(inbox.messages) == 2, timeout=10, what="both digests")
    assert sorted(m.rcpt_tos[0] for m in inbox.messages) == ["ana@example.com",
                                                             "cleo@example.com"]
    assert all(len(m.rcpt_tos) == 1 for m in inbox.messages)  # nobody sees the others
    text, html = text_and_html(inbox.messages[0])
    this_week = sum(now for now, _ in WEEKS.values())
    before = sum(then for _, then in WEEKS.values())
    assert f"Human clicks: {this_week} (the week before: {before})" in text
    assert "1. Store flyer: 30 human clicks" in text and "2. Insta bio: 5 human clicks" in text
    assert "1. Packaging: 0 human clicks" in text  # the least engaged: silent first
    # A mover needs 20 human clicks in both weeks: the flyer is one, the bio (2 → 5) is not.
    movers = text.split("Biggest movers")[1].split("Open alerts")[0]
    assert "Store flyer: +50.0% (20 -> 30)" in movers and "Insta bio" not in movers
    assert html.count('data-list="most"') == 2 and html.count('data-list="movers"') == 1
    assert f'data-figure="human_clicks">{this_week}<' in html

    again = cli.invoke(args=["digest", "--send"])

    assert again.exit_code == 0, again.output
    assert "Digest queued for 0 users" in again.output
    with runtime(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMail)) == 2
    assert len(inbox.messages) == 2


@pytest.mark.usefixtures("week")
def test_the_preview_prints_the_digest_and_sends_nothing(app: Flask, cli: Any) -> None:
    text = cli.invoke(args=["digest", "--preview"])
    html = cli.invoke(args=["digest", "--preview", "--html"])

    assert text.exit_code == 0 and html.exit_code == 0, text.output + html.output
    assert "Subject: [Touchlink] Your week:" in text.output
    assert "1. Store flyer: 30 human clicks" in text.output
    assert "<html" in html.output and "Store flyer" in html.output
    with runtime(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_sending_without_smtp_says_what_to_set(make_app: Any) -> None:
    plain = make_app()

    result = plain.test_cli_runner().invoke(args=["digest", "--send"])

    assert result.exit_code == 2
    assert "TOUCHLINK_SMTP_HOST" in result.output


def test_the_account_page_turns_the_digest_on_and_off(
    make_app: Any, auth: Any, pages: Any
) -> None:
    client = auth.client("analyst")
    page = client.get("/account").get_data(as_text=True)
    assert "This server sends no e-mail yet" not in page  # this app has an SMTP server
    assert 'name="weekly_digest" checked' not in page

    opt_in(client, pages, True)
    assert 'name="weekly_digest" checked' in client.get("/account").get_data(as_text=True)
    opt_in(client, pages, False)
    assert 'name="weekly_digest" checked' not in client.get("/account").get_data(as_text=True)
    assert client.post("/account", data={"weekly_digest": "on"}).status_code == 400  # no CSRF
    assert auth_needed(make_app)


def auth_needed(make_app: Any) -> bool:
    anonymous = make_app().test_client().get("/account")
    return anonymous.status_code == 302 and "/signin" in anonymous.headers["Location"]
