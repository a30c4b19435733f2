"""The reports API: thin views over analytics.reports."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")
