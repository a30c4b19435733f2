"""`touchlink digest`: the weekly digest e-mail, previewed or sent (weekly, from cron)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from analytics.digest import build_digest, queue_digests
from analytics.mail import MailSettings, send_due_mail
from analytics.runtime import runtime
from shortener.db import utcnow
from shortener.unit_of_work import transaction


@click.command("digest")
@with_appcontext
@click.option("--preview", "mode", flag_value="preview", default=True,
              help="Print this week's digest (the default); nothing is sent.")
@click.option("--send", "mode", flag_value="send",
              help="Queue it for every user who asked for it, then send what is due.")
@click.option("--html", is_flag=True, help="With --preview: the HTML part, not the text.")
@click.option("--force", is_flag=True,
              help="With --send: also to those who had one in the last six days.")
def digest_command(mode: str, html: bool, force: bool) -> None:
    """The weekly digest: the last seven days' most and least engaged touchpoints, the
    biggest movers and the open alerts. Run `touchlink digest --send` once a week from cron;
    a second run in the same week sends nobody a second one."""
    rt, now = runtime(), utcnow()
    mail = MailSettings.of(rt.settings)
    if mode == "send" and mail is None:
        raise click.UsageError(
            "no SMTP server: set TOUCHLINK_SMTP_HOST and TOUCHLINK_SMTP_FROM to send the digest"
        )
    if mode == "preview":
        with rt.report_sessions() as session:
            digest = build_digest(session, now=now, zone=rt.settings.zone,
                                  base_url=rt.settings.base_url)
            click.echo(f"Subject: {digest.subject}\n")
            click.echo(digest.html() if html else digest.text())
        return
    assert mail is not None
    with transaction(rt.sessions) as session:
        digest = build_digest(session, now=now, zone=rt.settings.zone,
                              base_url=rt.settings.base_url)
        queued = queue_digests(session, digest, now=now, force=force)
    click.echo(f"Digest queued for {len(queued)} user{'' if len(queued) == 1 else 's'}"
               + (f": {', '.join(queued)}." if queued else " (none asked for it, or all had it)."))
    click.echo(f"{send_due_mail(rt.sessions, mail)} mails sent; the worker retries the rest.")
