"""The filters every page uses to show times, numbers and percentages."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from shortener.runtime import runtime


def format_time(moment: datetime | None, empty: str = "—") -> str:
    """`2026-11-24 14:05 CET`: times on the pages are the workspace's (TOUCHLINK_TIMEZONE), the
    zone reports cut their days in."""
    if moment is None:
        return empty
    return moment.astimezone(runtime().settings.zone).strftime("%Y-%m-%d %H:%M %Z")


def format_number(value: int | float | None, empty: str = "—") -> str:
    if value is None:
        return empty
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def format_percent(value: float | None, empty: str = "—", *, signed: bool = False) -> str:
    """A fraction as a percentage: 0.4231 → `42.3%` (or `+42.3%` when `signed`)."""
    if value is None:
        return empty
    places = 0 if abs(value) >= 1 else 1  # +1250%, not +1250.0%
    text = f"{value * 100:+.{places}f}%" if signed else f"{value * 100:.{places}f}%"
    return text.replace("-", "\u2212")  # a real minus sign reads better in a table


def init_app(app: Flask) -> None:
    app.add_template_filter(format_time, "when")
    app.add_template_filter(format_number, "number")
    app.add_template_filter(format_percent, "percent")
