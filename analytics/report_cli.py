"""`touchlink report touchpoints|stages`: the reports in a terminal."""

from __future__ import annotations

from flask.cli import AppGroup

report_cli = AppGroup("report", help="Engagement reports: touchpoints and stages.")
