"""`touchlink alerts check`: evaluate the alert rules now, send the mail due, list what is open."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from analytics.alert_watch import check_alerts
from analytics.alerts import Notify, list_alerts
from analytics.mail import MailSettings, send_due_mail
from analytics.runtime import runtime


@click.group("alerts", cls=AppGroup)  # its commands run in the app's context
def alerts_cli() -> None:
    """Alerts on touchpoints (the worker evaluates them every minute)."""


@alerts_cli.command("check")
def check_command() -> None:
    """Evaluate every rule now, send the alert mail that is due, and list the open alerts."""
    rt = runtime()
    mail = MailSettings.of(rt.settings)
    found = check_alerts(rt.sessions, zone=rt.settings.zone,
                         notify=Notify(mail, rt.settings.base_url))
    click.echo(f"{found.raised} raised, {found.resolved} resolved.")
    if mail is not None:
        click.echo(f"{send_due_mail(rt.sessions, mail)} mails sent.")
    with rt.sessions() as session:
        for alert, touchpoint in list_alerts(session, state="open"):
            about = touchpoint.key if touchpoint else f"webhook {alert.webhook_id}"
            click.echo(f"open  #{alert.id}  {alert.kind}  {about}  since "
                       f"{alert.raised_at.isoformat(timespec='minutes')}: {alert.message}")
