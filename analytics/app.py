"""The click side's part of the app: the reports API, the dashboard, health and metrics, and the
click side's commands, over the runtime the composition root built (`analytics.runtime`)."""

from __future__ import annotations

from flask import Flask

from analytics import (
    alert_pages,
    alerts_api,
    cli,
    dashboard,
    detail_pages,
    health,
    list_pages,
    live_api,
    outcomes_api,
    share_pages,
)
from analytics.alerts_cli import alerts_cli
from analytics.digest_cli import digest_command
from analytics.reports import api as reports_api
from analytics.reports import outcome_cli  # noqa: F401  (its commands join `report`)
from analytics.reports.cli import report_cli


def init_app(app: Flask) -> None:
    app.register_blueprint(reports_api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(outcomes_api.bp)
    alerts_api.init_app(app)
    alert_pages.init_app(app)
    live_api.init_app(app)
    dashboard.init_app(app)
    detail_pages.init_app(app)
    list_pages.init_app(app)
    share_pages.init_app(app)
    app.cli.add_command(report_cli)
    app.cli.add_command(alerts_cli)
    app.cli.add_command(digest_command)
    cli.init_app(app)
